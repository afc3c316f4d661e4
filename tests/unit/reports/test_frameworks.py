"""Framework catalogues: they load, agree with the policies' declared controls, and bad ones are
refused with the file and field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import POLICY_DIR, RULES_DIR
from tribunal.model import EvidenceKind
from tribunal.policy import load_policy_set
from tribunal.reports import FrameworkError, framework_ids, load_framework, load_frameworks


def test_the_four_frameworks_load() -> None:
    frameworks = load_frameworks(RULES_DIR)
    assert sorted(frameworks) == ["cis-k8s", "nsa-cisa", "pss-baseline", "pss-restricted"]
    restricted = frameworks["pss-restricted"]
    assert {c.full_id for c in frameworks["pss-baseline"].controls} < {c.full_id for c in restricted.controls}
    assert any(not c.policies for c in frameworks["cis-k8s"].controls)  # some controls are not assessable


def test_catalogues_and_policy_metadata_agree_both_ways() -> None:
    policies = load_policy_set(POLICY_DIR).policies
    for framework in load_frameworks(RULES_DIR).values():
        catalogue = {c.full_id: set(c.policies) for c in framework.controls}
        for control, listed in catalogue.items():
            declared = {p.id for p in policies.values() if control in p.controls}
            assert listed == declared, (
                f"{framework.id}: {control} lists {listed}, policies declare {declared}"
            )
        own = {c.framework for c in framework.controls}
        for p in policies.values():
            for control in p.controls:
                if control.split(":", 1)[0] in own:
                    assert control in catalogue, f"{p.id} names {control}, absent from {framework.id}"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "frameworks"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "id: demo\ntitle: D\ncontrols:\n  - {id: a, title: A}\n  - {id: b, policies: [x]}\n",
            "controls[1] (b).title",
        ),
        ("id: demo\ntitle: D\ncontrols:\n  - {id: a, title: A, polices: [x]}\n", "controls[0] (a).polices"),
        ("id: demo\ntitle: D\ncontrols: []\n", "controls"),
        (
            "id: demo\ntitle: D\ncontrols:\n  - {id: a, title: A}\n  - {id: a, title: B}\n",
            "controls: Value error, control id 'a' appears twice",
        ),
        ("id: other\ntitle: D\ncontrols:\n  - {id: a, title: A}\n", "id: 'other' differs from the file name"),
        ("- just a list\n", "a catalogue is a mapping"),
    ],
)
def test_a_bad_catalogue_names_its_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    rules = _write(tmp_path, "demo", text)
    with pytest.raises(FrameworkError) as info:
        load_framework(rules, "demo")
    assert str(rules / "frameworks" / "demo.yaml") in str(info.value)
    assert field in str(info.value)


def test_unknown_framework_and_include_cycle(tmp_path: Path) -> None:
    rules = _write(tmp_path, "a", "id: a\ntitle: A\nincludes: [b]\ncontrols:\n  - {id: x, title: X}\n")
    _write(tmp_path, "b", "id: b\ntitle: B\nincludes: [a]\ncontrols:\n  - {id: y, title: Y}\n")
    with pytest.raises(FrameworkError, match="cycle a -> b -> a"):
        load_framework(rules, "a")
    with pytest.raises(FrameworkError, match=r"no such framework catalogue \(known: a, b\)"):
        load_framework(rules, "c")
    assert framework_ids(rules) == ["a", "b"]


def _policy_kinds() -> dict[str, EvidenceKind]:
    return {p.id: EvidenceKind(p.kind) for p in load_policy_set(POLICY_DIR).policies.values()}


def test_each_control_says_which_evidence_assesses_it() -> None:
    """Admission reviews and Trivy reports show the state of what they judge, so they assess the
    controls their policies check; Falco alerts are events (their absence shows nothing), so they
    assess only runtime monitoring itself, and elsewhere can only fail a control."""
    kinds = _policy_kinds()
    for framework in load_frameworks(RULES_DIR, kinds).values():
        for control in framework.controls:
            assert control.evidence is not None, control.full_id
            judged = {kinds[p] for p in control.policies}
            if control.full_id == "nsa-cisa:threat-detection:runtime-monitoring":
                expected = {EvidenceKind.FALCO}
            else:
                expected = judged - {EvidenceKind.FALCO}
            assert set(control.evidence) == expected, (
                f"{control.full_id}: evidence {[k.value for k in control.evidence]}, its policies "
                f"({', '.join(control.policies)}) say evidence: [{', '.join(k.value for k in sorted(expected))}]"
            )


def test_a_catalogue_cannot_claim_evidence_none_of_its_policies_judges(tmp_path: Path) -> None:
    rules = _write(
        tmp_path,
        "demo",
        "id: demo\ntitle: D\ncontrols:\n  - {id: a, title: A, policies: [p], evidence: [admission]}\n"
        "  - {id: b, title: B, policies: [p], evidence: [trivy]}\n",
    )
    kinds = {"p": EvidenceKind.ADMISSION}
    with pytest.raises(FrameworkError) as info:
        load_framework(rules, "demo", kinds)
    message = str(info.value)
    assert str(rules / "frameworks" / "demo.yaml") in message
    assert "controls[1] (b).evidence: trivy evidence is judged by none of its policies (p)" in message
    load_framework(rules, "demo")  # without the policies' kinds nothing can be checked


def test_evidence_left_out_is_derived_from_the_policies(tmp_path: Path) -> None:
    rules = _write(
        tmp_path,
        "demo",
        "id: demo\ntitle: D\ncontrols:\n  - {id: a, title: A, policies: [p, q]}\n  - {id: b, title: B}\n"
        "  - {id: c, title: C, policies: [p, q], evidence: []}\n",
    )
    kinds = {"p": EvidenceKind.TRIVY, "q": EvidenceKind.ADMISSION}
    a, b, c = load_framework(rules, "demo", kinds).controls
    assert a.evidence == (EvidenceKind.ADMISSION, EvidenceKind.TRIVY)
    assert b.evidence == ()
    assert c.evidence == ()
    assert load_framework(rules, "demo").controls[0].evidence is None


def test_a_kind_of_evidence_twice_or_unknown_is_refused(tmp_path: Path) -> None:
    for evidence, says in [
        ("[admission, admission]", "appears twice"),
        ("[runtime]", "'admission', 'falco'"),
    ]:
        rules = _write(
            tmp_path,
            "demo",
            f"id: demo\ntitle: D\ncontrols:\n  - {{id: a, title: A, evidence: {evidence}}}\n",
        )
        with pytest.raises(FrameworkError, match=r"controls\[0\] \(a\)\.evidence") as info:
            load_framework(rules, "demo")
        assert says in str(info.value)
