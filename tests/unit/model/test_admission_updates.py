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


# Pod Security Admission's rule for pods (isSignificantPodUpdate): only images, the number of
# containers and init containers, added ephemeral containers and seccomp annotations count.


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["spec"].update(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]),
        lambda p: p["spec"].pop("schedulingGates"),
        lambda p: p["spec"].update(activeDeadlineSeconds=30),
        lambda p: p["spec"]["containers"][0].update(resources={"limits": {"cpu": "2"}}),
        lambda p: p["metadata"].update(annotations={"kubectl.kubernetes.io/restartedAt": "now"}),
        # forbidden on a live pod: the API server refuses it before any validating webhook is called
        lambda p: p["spec"]["containers"][0]["securityContext"].update(capabilities={"add": ["SYS_ADMIN"]}),
    ],
    ids=[
        "tolerations",
        "scheduling-gate-removed",
        "active-deadline",
        "resources",
        "annotation",
        "immutable-field",
    ],
)
def test_a_pod_update_psa_does_not_judge_is_not_judged_again(change: Any) -> None:
    old = pod(
        {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}},
        schedulingGates=[{"name": "example.com/quota"}],
    )
    new = copy.deepcopy(old)
    change(new)
    assert update_changes_nothing_judged(update(new, old))


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["spec"]["initContainers"][0].update(image="busybox:1.37"),
        lambda p: p["spec"]["containers"].append({"name": "extra", "image": "nginx:1.27"}),
        lambda p: p["spec"]["initContainers"].clear(),
        lambda p: p["spec"]["ephemeralContainers"][0].update(image="busybox:1.37"),
        lambda p: p["spec"]["ephemeralContainers"].append({"name": "debug-2", "image": "busybox:1.36"}),
        lambda p: p["metadata"].update(
            annotations={"container.seccomp.security.alpha.kubernetes.io/app": "unconfined"}
        ),
        lambda p: p["metadata"].update(
            annotations={"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
        ),
    ],
    ids=[
        "init-image",
        "container-added",
        "init-removed",
        "ephemeral-image",
        "ephemeral-added",
        "container-seccomp-annotation",
        "pod-seccomp-annotation",
    ],
)
def test_a_pod_update_psa_judges_is_judged_again(change: Any) -> None:
    old = pod(
        initContainers=[{"name": "init", "image": "busybox:1.36"}],
        ephemeralContainers=[{"name": "debug", "image": "busybox:1.36"}],
    )
    new = copy.deepcopy(old)
    change(new)
    assert not update_changes_nothing_judged(update(new, old))


def test_the_ephemeral_containers_subresource_is_judged_when_it_adds_a_container() -> None:
    old = pod()
    debugged = copy.deepcopy(old)
    debugged["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox:1.36"}]
    assert not update_changes_nothing_judged(update(debugged, old, subResource="ephemeralcontainers"))
    relabelled = copy.deepcopy(debugged)
    relabelled["metadata"]["labels"] = {"debugged": "yes"}
    assert update_changes_nothing_judged(update(relabelled, debugged, subResource="ephemeralcontainers"))


@pytest.mark.parametrize(
    "sub_resource", ["status", "binding", "eviction", "exec", "attach", "log", "portforward", "proxy"]
)
def test_the_pod_subresources_psa_ignores_are_never_judged(sub_resource: str) -> None:
    old = pod({"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}})
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running"}
    request = update(
        new, old, subResource=sub_resource, resource={"group": "", "version": "v1", "resource": "pods"}
    )
    assert update_changes_nothing_judged(request)
    # the same subresource name on another resource is not exempt by name
    request["resource"] = {"group": "apps", "version": "v1", "resource": "deployments"}
    new_deployment, old_deployment = deployment(), deployment()
    new_deployment["spec"]["template"]["spec"]["hostPID"] = True
    request.update(object=new_deployment, oldObject=old_deployment)
    assert not update_changes_nothing_judged(request)


def test_a_pod_is_recognised_by_the_request_kind_when_the_objects_have_none() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = [{"operator": "Exists"}]
    for obj in (old, new):
        del obj["kind"]
    request = update(new, old, kind={"group": "", "version": "v1", "kind": "Pod"})
    assert update_changes_nothing_judged(request)


def cronjob() -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"metadata": {}, "spec": pod()["spec"]}}},
        },
    }


def test_a_cronjob_is_judged_again_only_when_its_job_pod_template_changes() -> None:
    old = cronjob()
    rescheduled = copy.deepcopy(old)
    rescheduled["spec"].update(schedule="0 4 * * *", suspend=True)
    assert update_changes_nothing_judged(update(rescheduled, old))
    edited = copy.deepcopy(old)
    edited["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        "runAsUser": 0
    }
    assert not update_changes_nothing_judged(update(edited, old))
    annotated = copy.deepcopy(old)
    annotated["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/app": "unconfined"
    }
    assert not update_changes_nothing_judged(update(annotated, old))


def test_a_workload_status_update_is_not_judged_again() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["status"] = {"readyReplicas": 1}
    assert update_changes_nothing_judged(update(new, old, subResource="status"))
