"""Framework catalogues: they load, agree with the policies' declared controls, and bad ones are
refused with the file and field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import POLICY_DIR, RULES_DIR
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
