# METADATA
# title: Kubernetes helpers
# description: |
#   Shared helpers for the admission policies: the pod specs of the admitted object (with their
#   path), every container of every pod spec, pod annotations, security contexts and image parsing.
#
#   Control ids used by the admission policies (framework catalogue authors: reuse these):
#
#   pss-baseline:privileged-containers     pss-baseline:host-namespaces     pss-baseline:hostpath-volumes
#   pss-baseline:host-ports                pss-baseline:capabilities        pss-baseline:apparmor
#   pss-baseline:selinux                   pss-baseline:proc-mount-type     pss-baseline:seccomp
#   pss-baseline:sysctls                   pss-baseline:host-process
#   pss-restricted:volume-types            pss-restricted:privilege-escalation
#   pss-restricted:running-as-non-root     pss-restricted:running-as-non-root-user
#   pss-restricted:seccomp                 pss-restricted:capabilities
#   cis-k8s:5.2.2  privileged containers           cis-k8s:5.2.3  hostPID
#   cis-k8s:5.2.4  hostIPC                         cis-k8s:5.2.5  hostNetwork
#   cis-k8s:5.2.6  allowPrivilegeEscalation        cis-k8s:5.2.7  root containers
#   cis-k8s:5.2.8  NET_RAW                         cis-k8s:5.2.9  added capabilities
#   cis-k8s:5.2.10 capabilities assigned           cis-k8s:5.2.11 Windows HostProcess
#   cis-k8s:5.2.12 HostPath volumes                cis-k8s:5.2.13 hostPorts
#   cis-k8s:5.5.1  image provenance                cis-k8s:5.7.2  seccomp profile
#   cis-k8s:5.7.3  security context applied
#   nsa-cisa:pod-security:privileged               nsa-cisa:pod-security:host-namespaces
#   nsa-cisa:pod-security:host-filesystem          nsa-cisa:pod-security:capabilities
#   nsa-cisa:pod-security:privilege-escalation     nsa-cisa:pod-security:non-root-containers
#   nsa-cisa:pod-security:seccomp                  nsa-cisa:pod-security:apparmor
#   nsa-cisa:pod-security:selinux                  nsa-cisa:pod-security:resource-limits
#   nsa-cisa:supply-chain:image-pinning            nsa-cisa:supply-chain:trusted-registries
#   Reserved, same scheme, not used by an admission policy yet: nsa-cisa:pod-security:immutable-fs
#   (readOnlyRootFilesystem), nsa-cisa:supply-chain:image-scanning (vulnerability policies).
#
#   A violation's `controls` are the ones that reason breaks (host_namespaces names only the CIS
#   number of the namespace it found); the METADATA `controls` of a policy list them all.
#
#   Engine notes: regorus errors on iterating null, so every iteration goes through array_of /
#   object_of; rego-cpp rejects one-line `[x | a; b]` comprehensions, so none are used; regorus
#   cannot call a function through an import alias (`k8s.f(x)` fails: "could not find function"),
#   so policies call functions by full path and use the alias for rules only; rego-cpp's sprintf
#   wraps some string arguments in quotes (strings built by the caller and passed into a function
#   that formats them), so messages and paths are built with concat and text(), never sprintf("%s").
package tribunal.lib.kubernetes

import rego.v1

# ---------------------------------------------------------------------------------------------
# Generic guards

array_of(x) := x if {
	is_array(x)
} else := []

object_of(x) := x if {
	is_object(x)
} else := {}

# Any value as text for messages: strings as they are, anything else as JSON-ish text.
text(x) := x if {
	is_string(x)
} else := sprintf("%v", [x])

string_of(x) := x if {
	is_string(x)
} else := ""

# ---------------------------------------------------------------------------------------------
# The admitted object

default admitted := {}

admitted := o if {
	o := input.event.request.object
	is_object(o)
}

admitted_kind := k if {
	k := admitted.kind
	is_string(k)
} else := k if {
	k := input.event.request.kind.kind
	is_string(k)
} else := ""

template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}

# pod_specs: one record per pod spec of the admitted object:
#   spec       the pod spec object
#   path       its path in the object ("spec", "spec.template.spec", ...)
#   meta       the pod metadata (Pod: metadata; templates: template.metadata), {} when absent
#   meta_path  the path of that metadata
pod_specs contains {"spec": s, "path": "spec", "meta": object_of(admitted.metadata), "meta_path": "metadata"} if {
	admitted_kind == "Pod"
	s := admitted.spec
	is_object(s)
}

pod_specs contains rec if {
	template_kinds[admitted_kind]
	template := admitted.spec.template
	is_object(template)
	s := template.spec
	is_object(s)
	rec := {
		"spec": s,
		"path": "spec.template.spec",
		"meta": object_of(object.get(template, "metadata", {})),
		"meta_path": "spec.template.metadata",
	}
}

pod_specs contains rec if {
	admitted_kind == "CronJob"
	template := admitted.spec.jobTemplate.spec.template
	is_object(template)
	s := template.spec
	is_object(s)
	rec := {
		"spec": s,
		"path": "spec.jobTemplate.spec.template.spec",
		"meta": object_of(object.get(template, "metadata", {})),
		"meta_path": "spec.jobTemplate.spec.template.metadata",
	}
}

# Pod metadata annotations of a pod spec record ({} when none).
pod_annotations(ps) := object_of(object.get(ps.meta, "annotations", {}))

# Pod-level security context of a pod spec ({} when none).
pod_security_context(spec) := object_of(object.get(spec, "securityContext", {}))

# Container-level security context ({} when none).
security_context(ctr) := object_of(object.get(ctr, "securityContext", {}))

# Windows pods are exempt from some restricted checks (PSS: spec.os.name == windows).
is_windows(spec) if object.get(spec, ["os", "name"], "") == "windows"

container_fields := ["containers", "initContainers", "ephemeralContainers"]

# containers: one record per container of every pod spec:
#   container  the container object
#   name, image
#   field      "containers" | "initContainers" | "ephemeralContainers"
#   path       e.g. "spec.template.spec.containers[0]"
#   pod        the pod spec record it belongs to (see pod_specs)
#   sc         the container security context ({} when none)
#   pod_sc     the pod security context ({} when none)
containers contains rec if {
	some ps in pod_specs
	some field in container_fields
	some i, ctr in array_of(object.get(ps.spec, field, []))
	is_object(ctr)
	rec := {
		"container": ctr,
		"name": string_of(object.get(ctr, "name", "")),
		"image": string_of(object.get(ctr, "image", "")),
		"field": field,
		"path": concat("", [ps.path, ".", field, "[", format_int(i, 10), "]"]),
		"pod": ps,
		"sc": security_context(ctr),
		"pod_sc": pod_security_context(ps.spec),
	}
}

# volumes: one record per volume of every pod spec: {volume, name, path, pod}.
volumes contains rec if {
	some ps in pod_specs
	some i, vol in array_of(object.get(ps.spec, "volumes", []))
	is_object(vol)
	rec := {
		"volume": vol,
		"name": string_of(object.get(vol, "name", "")),
		"path": concat("", [ps.path, ".volumes[", format_int(i, 10), "]"]),
		"pod": ps,
	}
}

# "containers/nginx": how messages name a container.
container_ref(c) := concat("/", [c.field, c.name])

# The image of the container called `name` in a pod spec record ("" when there is none).
container_image(ps, name) := img if {
	some field in container_fields
	some ctr in array_of(object.get(ps.spec, field, []))
	is_object(ctr)
	object.get(ctr, "name", "") == name
	img := string_of(object.get(ctr, "image", ""))
} else := ""

# ---------------------------------------------------------------------------------------------
# Violation builders

violation(msg, severity, controls, details) := {
	"msg": msg,
	"severity": severity,
	"controls": controls,
	"details": details,
}

container_violation(c, msg, severity, controls, extra) := violation(
	msg,
	severity,
	controls,
	object.union({"container": c.name, "image": c.image, "path": c.path}, extra),
)

pod_violation(ps, field, msg, severity, controls, extra) := violation(
	msg,
	severity,
	controls,
	object.union({"path": concat(".", [ps.path, field])}, extra),
)

# Which list of a pod spec record holds the container called `name` ("containers" when none does).
container_field(ps, name) := field if {
	some field in container_fields
	some ctr in array_of(object.get(ps.spec, field, []))
	is_object(ctr)
	object.get(ctr, "name", "") == name
} else := "containers"

# How messages name the container an annotation is about, e.g. "initContainers/setup".
annotation_container_ref(ps, name) := concat("/", [container_field(ps, name), name])

# An annotation naming a container (apparmor, legacy seccomp): container and image when found.
annotation_violation(ps, key, cname, msg, severity, controls) := violation(msg, severity, controls, d) if {
	img := container_image(ps, cname)
	img != ""
	d := {"path": concat("", [ps.meta_path, ".annotations[", key, "]"]), "annotation": key, "container": cname, "image": img}
} else := violation(msg, severity, controls, d) if {
	d := {"path": concat("", [ps.meta_path, ".annotations[", key, "]"]), "annotation": key, "container": cname}
}

# ---------------------------------------------------------------------------------------------
# Images: [registry/]repository[:tag][@digest]

image_name(image) := split(image, "@")[0]

image_digest(image) := d if {
	contains(image, "@")
	parts := split(image, "@")
	d := parts[1]
} else := ""

image_tag(image) := t if {
	parts := split(image_name(image), "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	segs := split(last, ":")
	t := segs[count(segs) - 1]
} else := ""

registry_host(h) if contains(h, ".")

registry_host(h) if contains(h, ":")

registry_host(h) if h == "localhost"

# The registry named in the image, or "docker.io" when none is ("index.docker.io" normalised too).
image_registry(image) := r if {
	parts := split(image_name(image), "/")
	count(parts) > 1
	registry_host(parts[0])
	parts[0] != "index.docker.io"
	r := parts[0]
} else := "docker.io"

# The repository without registry, tag or digest; Docker Hub one-part names gain "library/".
image_repository(image) := repo if {
	name := image_name(image)
	tag := image_tag(image)
	untagged := trim_suffix(name, concat("", [":", tag]))
	bare := strip_registry(untagged)
	repo := library_prefixed(image_registry(image), bare)
}

strip_registry(name) := rest if {
	parts := split(name, "/")
	count(parts) > 1
	registry_host(parts[0])
	rest := trim_prefix(name, concat("", [parts[0], "/"]))
} else := name

library_prefixed(registry, bare) := concat("", ["library/", bare]) if {
	registry == "docker.io"
	not contains(bare, "/")
} else := bare

# Fully qualified reference: registry/repository[:tag][@digest], e.g. docker.io/library/nginx:1.25.
image_reference(image) := concat("", [image_registry(image), "/", image_repository(image), tag_suffix(image), digest_suffix(image)])

tag_suffix(image) := concat("", [":", image_tag(image)]) if {
	image_tag(image) != ""
} else := ""

digest_suffix(image) := concat("", ["@", image_digest(image)]) if {
	image_digest(image) != ""
} else := ""

# `entry` (a registry or registry/path prefix such as "ghcr.io/myorg/") covers the image.
image_matches_prefix(image, entry) if {
	is_string(entry)
	entry != ""
	endswith(entry, "/")
	startswith(image_reference(image), entry)
}

image_matches_prefix(image, entry) if {
	is_string(entry)
	entry != ""
	not endswith(entry, "/")
	ref := image_reference(image)
	some sep in ["/", ":", "@"]
	startswith(ref, concat("", [entry, sep]))
}

image_matches_prefix(image, entry) if {
	is_string(entry)
	entry == image_reference(image)
}
