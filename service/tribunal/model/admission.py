"""AdmissionReview (``admission.k8s.io/v1``, ``v1beta1`` accepted) with typed access to pod specs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tribunal.model.common import JSONObject, K8sModel

ADMISSION_API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")

# Where the pod spec sits in each workload kind that carries one.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")

# Built-in kinds that have no namespace: a bare manifest of one is judged with none, not "default".
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)


class GroupVersionKind(K8sModel):
    group: str = ""
    version: str = Field(min_length=1, max_length=253)
    kind: str = Field(min_length=1, max_length=253)


class GroupVersionResource(K8sModel):
    group: str = ""
    version: str = ""
    resource: str = ""


class UserInfo(K8sModel):
    username: str = Field("", max_length=4096)
    uid: str = ""
    groups: list[str] = Field(default_factory=list)
    extra: dict[str, list[str]] = Field(default_factory=dict)


class AdmissionRequest(K8sModel):
    uid: str = Field(min_length=1, max_length=128)
    kind: GroupVersionKind
    resource: GroupVersionResource | None = None
    sub_resource: str = ""
    request_kind: GroupVersionKind | None = None
    name: str = Field("", max_length=253)
    namespace: str = Field("", max_length=253)
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    user_info: UserInfo = Field(default_factory=UserInfo)
    object: JSONObject | None = None
    old_object: JSONObject | None = None
    dry_run: bool = False
    options: JSONObject | None = None


class Status(K8sModel):
    code: int | None = None
    message: str = ""
    reason: str = ""


class AdmissionResponse(K8sModel):
    uid: str
    allowed: bool
    status: Status | None = None
    warnings: list[str] | None = None
    audit_annotations: dict[str, str] | None = None


class Container(K8sModel):
    """One container of a pod spec; only what Tribunal reads is typed."""

    name: str = ""
    image: str = ""
    security_context: JSONObject | None = None
    resources: JSONObject | None = None


class PodSpec(K8sModel):
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] = Field(default_factory=list)
    ephemeral_containers: list[Container] = Field(default_factory=list)
    volumes: list[JSONObject] = Field(default_factory=list)
    security_context: JSONObject | None = None
    host_network: bool = False
    host_pid: bool = Field(False, alias="hostPID")
    host_ipc: bool = Field(False, alias="hostIPC")

    def all_containers(self) -> list[Container]:
        return [*self.containers, *self.init_containers, *self.ephemeral_containers]


class AdmissionReview(K8sModel):
    """The review the API server sends; ``response`` is set on the way back."""

    api_version: Literal["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest | None = None
    response: AdmissionResponse | None = None

    @property
    def object_kind(self) -> str:
        return self.request.kind.kind if self.request else ""

    def pod_specs(self) -> list[tuple[str, PodSpec]]:
        """Every pod spec the admitted object carries, with its dotted path (empty for non-workloads)."""
        if self.request is None or not isinstance(self.request.object, dict):
            return []
        return pod_specs_of(self.request.object)

    def images(self) -> list[str]:
        """The image of every container (containers, then init and ephemeral ones) that names one.
        Read from the JSON directly, not through ``pod_specs()``: this runs for every review (the
        subject's image), where validating the pod spec cost 3% of a judge worker's time, and a
        malformed container list is the policies' to judge, not a reason to refuse the review."""
        obj = self.request.object if self.request is not None else None
        spec = _pod_spec_dict(obj) if isinstance(obj, dict) else None
        if spec is None:
            return []
        images: list[str] = []
        for field in CONTAINER_FIELDS:
            containers = spec.get(field)
            for container in containers if isinstance(containers, list) else ():
                image = container.get("image") if isinstance(container, dict) else None
                if isinstance(image, str) and image:
                    images.append(image)
        return images

    def respond(self, response: AdmissionResponse) -> dict[str, Any]:
        """The answer to this review: same apiVersion and kind, ``response.uid`` = ``request.uid``."""
        return {
            "apiVersion": self.api_version,
            "kind": "AdmissionReview",
            "response": response.model_dump(by_alias=True, exclude_none=True),
        }


def pod_specs_of(obj: JSONObject) -> list[tuple[str, PodSpec]]:
    """The pod spec of a Pod or of a workload's pod template, typed."""
    spec = _pod_spec_dict(obj)
    if spec is None:
        return []
    return [(".".join(POD_SPEC_PATHS[str(obj.get("kind", ""))]), PodSpec.model_validate(spec))]


def _pod_spec_dict(obj: JSONObject) -> dict[str, Any] | None:
    """The pod spec of a Pod or of a workload's pod template, as JSON (None when there is none)."""
    path = POD_SPEC_PATHS.get(str(obj.get("kind", "")))
    if path is None:
        return None
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


# Annotations that change what a pod may do: an update touching them is judged again.
_SECURITY_ANNOTATION_PREFIXES = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
)

# Pod subresources Pod Security Admission never judges: none of them can change the pod spec
# (k8s.io/pod-security-admission/admission/admission.go, ignoredPodSubresources).
IGNORED_POD_SUBRESOURCES = frozenset(
    {"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"}
)


def update_changes_nothing_judged(request: dict[str, Any]) -> bool:
    """True for an UPDATE that Pod Security Admission would not judge again, because it changes
    nothing the admission policies read.

    - A **Pod** (the pod itself or a subresource such as ``pods/ephemeralcontainers``) is judged
      again, as in PSA's ``isSignificantPodUpdate``, only when the number of containers or init
      containers changes, an image of a container or init container changes, an ephemeral container
      is added or its image changes, or a security annotation (AppArmor, seccomp) changes. Every
      other pod field the policies read is immutable once the pod exists; the mutable rest
      (labels, other annotations, tolerations, scheduling gates, activeDeadlineSeconds, status)
      is not judged. The subresources PSA ignores (``status``, ``binding``, ``eviction``, ``exec``,
      ``attach``, ``log``, ``portforward``, ``proxy``) are never judged.
    - A **workload** (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
      CronJob) is judged again when its pod template (spec and the security annotations of the
      pod metadata and the object's own) changes: scaling, relabelling or a status update is not.
      A subresource (``deployments/status``, ``cronjobs/status``) follows the same rule.
      (PSA evaluates every workload update but only warns and audits there; Tribunal may deny.)
    - **Any other kind** is judged again when anything but its metadata and status changes.

    An UPDATE whose object is identical to the old one (a recorded or replayed review: there is no
    change to exempt) and one without an old object are judged as they stand, as
    ../shared/fixtures/admission/EXPECTED.md expects."""
    if request.get("operation") != "UPDATE":
        return False
    sub_resource = request.get("subResource") or ""
    if sub_resource in IGNORED_POD_SUBRESOURCES and _resource(request) == "pods":
        return True
    new, old = request.get("object"), request.get("oldObject")
    if not isinstance(new, dict) or not isinstance(old, dict) or new == old:
        return False
    if _kind(request, new) == "Pod" and _kind(request, old) == "Pod":
        return not _significant_pod_update(new, old)
    return _judged_part(new) == _judged_part(old)


def _resource(request: dict[str, Any]) -> str:
    resource = request.get("resource")
    name = resource.get("resource") if isinstance(resource, dict) else None
    return name if isinstance(name, str) else ""


def _kind(request: dict[str, Any], obj: dict[str, Any]) -> str:
    kind = obj.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    request_kind = request.get("kind")
    kind = request_kind.get("kind") if isinstance(request_kind, dict) else None
    return kind if isinstance(kind, str) else ""


def _list_of_objects(spec: Any, field: str) -> list[dict[str, Any]]:
    items = spec.get(field) if isinstance(spec, dict) else None
    return [item if isinstance(item, dict) else {} for item in items] if isinstance(items, list) else []


def _significant_pod_update(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Pod Security Admission's isSignificantPodUpdate, plus the security annotations Tribunal's
    policies read (PSA compares the per-container seccomp annotations; AppArmor annotations cannot
    change on a live pod, so comparing them too only matters for requests no API server sent)."""
    if _security_annotations([new.get("metadata")]) != _security_annotations([old.get("metadata")]):
        return True
    spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(spec, dict) or not isinstance(old_spec, dict):
        return spec != old_spec
    for field in ("containers", "initContainers"):
        containers, old_containers = _list_of_objects(spec, field), _list_of_objects(old_spec, field)
        if len(containers) != len(old_containers):
            return True
        if any(c.get("image") != o.get("image") for c, o in zip(containers, old_containers, strict=True)):
            return True
    old_ephemeral = {c.get("name"): c for c in _list_of_objects(old_spec, "ephemeralContainers")}
    for container in _list_of_objects(spec, "ephemeralContainers"):
        previous = old_ephemeral.get(container.get("name"))
        if previous is None or previous.get("image") != container.get("image"):
            return True
    return False


def _security_annotations(metas: list[Any]) -> list[tuple[str, str]]:
    return sorted(
        (key, str(value))
        for meta in metas
        if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict)
        for key, value in meta["annotations"].items()
        if isinstance(key, str) and key.startswith(_SECURITY_ANNOTATION_PREFIXES)
    )


def _judged_part(obj: dict[str, Any]) -> tuple[Any, ...]:
    spec = _pod_spec_dict(obj)
    if spec is None:
        return ("object", {k: v for k, v in obj.items() if k not in ("metadata", "status")})
    path = POD_SPEC_PATHS[str(obj.get("kind", ""))]
    template = obj
    for key in path[:-1]:  # the pod template's metadata carries its annotations
        template = template.get(key, {}) if isinstance(template, dict) else {}
    metas = [obj.get("metadata")] + ([template.get("metadata")] if template is not obj else [])
    return ("pod", spec, _security_annotations(metas))
