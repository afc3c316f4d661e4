"""Which UPDATEs are judged again: as Pod Security Admission, only those that change what the
policies read (the pod spec or pod template, and the security annotations)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import pod
from tribunal.model import update_changes_nothing_judged


def update(new: dict[str, Any], old: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"operation": "UPDATE", "object": new, "oldObject": old, **fields}


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod()["spec"]},
        },
    }


def test_a_label_or_annotation_only_pod_update_is_not_judged_again() -> None:
    old = pod({"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}})
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"team": "shop"}
    new["metadata"]["annotations"] = {"note": "x"}
    new["status"] = {"phase": "Running"}
    assert update_changes_nothing_judged(update(new, old))


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["spec"]["containers"][0].update(image="nginx:1.28"),
        lambda p: p["spec"].update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        lambda p: p["metadata"].update(
            annotations={"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
        ),
    ],
    ids=["image", "ephemeral-container", "apparmor-annotation"],
)
def test_a_pod_update_that_changes_what_policies_read_is_judged(change: Any) -> None:
    old = pod()
    new = copy.deepcopy(old)
    change(new)
    assert not update_changes_nothing_judged(update(new, old))


def test_a_workload_is_judged_again_only_when_its_pod_template_changes() -> None:
    old = deployment()
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    scaled["metadata"]["labels"] = {"tier": "front"}
    assert update_changes_nothing_judged(update(scaled, old))
    edited = copy.deepcopy(old)
    edited["spec"]["template"]["spec"]["hostNetwork"] = True
    assert not update_changes_nothing_judged(update(edited, old))
    annotated = copy.deepcopy(old)
    annotated["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/app": "unconfined"
    }
    assert not update_changes_nothing_judged(update(annotated, old))


def test_creates_subresources_and_reviews_without_an_old_object_are_always_judged() -> None:
    same = pod()
    assert not update_changes_nothing_judged({"operation": "CREATE", "object": same, "oldObject": same})
    assert not update_changes_nothing_judged(update(same, same, subResource="ephemeralcontainers"))
    assert not update_changes_nothing_judged(update(same, None))  # type: ignore[arg-type]
    assert not update_changes_nothing_judged(
        update(same, copy.deepcopy(same))
    )  # nothing changed: judged as it stands
    service = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}}
    node_port = copy.deepcopy(service)
    node_port["spec"]["type"] = "NodePort"
    assert not update_changes_nothing_judged(update(node_port, service))
    relabelled = copy.deepcopy(service)
    relabelled["metadata"]["labels"] = {"a": "b"}
    assert update_changes_nothing_judged(update(relabelled, service))
