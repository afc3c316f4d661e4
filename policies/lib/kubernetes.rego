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
#   pss-baseline:host-probes-lifecycle-hooks pss-restricted:proc-mount-type
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
#   cis-k8s:5.7.3  security context applied        cis-k8s:5.7.4  default namespace
#   cis-k8s:5.1.1  cluster-admin bindings          cis-k8s:5.1.2  access to secrets
#   cis-k8s:5.1.3  RBAC wildcards                  cis-k8s:5.1.6  service account tokens
#   cis-k8s:5.1.8  bind, impersonate, escalate
#   nsa-cisa:pod-security:privileged               nsa-cisa:pod-security:host-namespaces
#   nsa-cisa:pod-security:host-filesystem          nsa-cisa:pod-security:capabilities
#   nsa-cisa:pod-security:privilege-escalation     nsa-cisa:pod-security:non-root-containers
#   nsa-cisa:pod-security:seccomp                  nsa-cisa:pod-security:apparmor
#   nsa-cisa:pod-security:selinux                  nsa-cisa:pod-security:resource-limits
#   nsa-cisa:supply-chain:image-pinning            nsa-cisa:supply-chain:trusted-registries
#   nsa-cisa:pod-security:immutable-fs             nsa-cisa:pod-security:service-account-tokens
#   nsa-cisa:network-separation:namespaces         nsa-cisa:authentication-authorization:rbac
#   hygiene:probes  hygiene:interactive-containers  hygiene:service-exposure   (no framework control)
#   Reserved, same scheme, not used by an admission policy yet: nsa-cisa:supply-chain:image-scanning
#   (vulnerability policies).
#
#   A violation's `controls` are the ones that reason breaks (host_namespaces names only the CIS
#   number of the namespace it found); the METADATA `controls` of a policy list them all.
#
#   Engine notes: regorus errors on iterating null and on object.get of a non-object, so every
#   iteration is guarded (is_array / is_object, or the type_name lookup below); rego-cpp rejects
#   one-line `[x | a; b]` comprehensions and `some k, v in` inside a comprehension, so neither is
#   used; regorus cannot call a function through an import alias (`k8s.f(x)` fails: "could not
#   find function"), so policies call functions by full path; rego-cpp's sprintf wraps some string
#   arguments in quotes, so messages and paths are built with concat and text(), never sprintf("%s").
#
#   Performance notes (regorus, the default engine; measured: the judge evaluates every policy on
#   every review, so what follows holds for each of them):
#   - Every rule and function of a policy package costs on each query, and each extra body of
#     `violations` costs ~1.5-2.5 us: policy packages hold `violations` only, in as few bodies as
#     is natural; constants (controls, allowed sets) are literals in the bodies, built when reached.
#   - A user function call costs ~1 us plus its body (an `else` chain more); the hot path (per pod
#     spec, per container) uses builtins and plain refs only: `c.container.securityContext.x == v`
#     (a ref through null or a non-object is undefined, never an error), object.get with a path
#     and a default, `x in {literal set}`, and for array_of / object_of / string_of
#       object.get({"array": x}, type_name(x), [])   x when it is an array, else []
#     Policies build container violations as literals (no builder call); other builders are
#     functions called only when a violation is found.
#   - Indexing an object literal by a variable (`{"a": 1}[k]`) is slow on regorus and finds
#     nothing on rego-cpp: use object.get(literal, k, default) or a list. rego-cpp also fails on
#     object.get with an array index out of range in the path: index arrays directly (`a[1]`).
#   - Rules are evaluated once per query, functions on every call: pod_specs and containers are
#     rules that compute, once, what violations need (name, image, path, ref); each rule
#     evaluated costs a few us more than the builtins it holds, so there are few of them.
package tribunal.lib.kubernetes

import rego.v1

# ---------------------------------------------------------------------------------------------
# Generic guards (not for the hot path: see the performance notes)

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
# The admitted object (pod_specs reads input directly; these are for other callers)

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

# pod_specs: one record per pod spec of the admitted object (an array: at most one today):
#   spec         the pod spec object
#   path         its path in the object ("spec", "spec.template.spec", ...)
#   meta_path    the path of the pod metadata (Pod: metadata; templates: template.metadata)
#   annotations  the pod metadata annotations, {} when none
#   windows      true for a Windows pod (spec.os.name == windows: exempt from some restricted checks)
# One rule reading input directly (the kind as admitted_kind gives it, short of a non-string
# object kind): each rule evaluated costs more than the builtins here.
pod_specs := [rec |
	obj := input.event.request.object
	is_object(obj)
	k := object.get(obj, "kind", null)
	kind := object.get({"string": k}, type_name(k), object.get(input, ["event", "request", "kind", "kind"], ""))
	# Where the pod template sits: its spec is <prefix>.spec, its metadata <prefix>.metadata (a Pod is
	# its own template). Inline, not a table rule: a literal here costs less than evaluating a rule.
	some layout in [
		[[], {"Pod"}],
		[["spec", "template"], {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}],
		[["spec", "jobTemplate", "spec", "template"], {"CronJob"}],
	]
	kind in layout[1]
	prefix := layout[0]
	spec_path := array.concat(prefix, ["spec"])
	spec := object.get(obj, spec_path, null)
	is_object(spec)
	meta_path := array.concat(prefix, ["metadata"])
	anns := object.get(obj, array.concat(meta_path, ["annotations"]), {})
	rec := {
		"spec": spec,
		"path": concat(".", spec_path),
		"meta_path": concat(".", meta_path),
		"annotations": object.get({"object": anns}, type_name(anns), {}),
		"windows": object.get(spec, ["os", "name"], "") == "windows",
	}
]

# Pod metadata annotations of a pod spec record ({} when none).
pod_annotations(ps) := ps.annotations

# Pod-level security context of a pod spec ({} when none).
pod_security_context(spec) := object_of(object.get(spec, "securityContext", {}))

# Container-level security context ({} when none).
security_context(ctr) := object_of(object.get(ctr, "securityContext", {}))

# Windows pods are exempt from some restricted checks (PSS: spec.os.name == windows).
is_windows(spec) if object.get(spec, ["os", "name"], "") == "windows"

container_fields := ["containers", "initContainers", "ephemeralContainers"]

# containers: one record per container of every pod spec:
#   container  the container object (read settings with object.get(c.container, [path...], default))
#   field      "containers" | "initContainers" | "ephemeralContainers"
#   pod        the pod spec record it belongs to (see pod_specs)
#   name       its name ("" when none)
#   image      its image ("" when none)
#   path       e.g. "spec.template.spec.containers[0]"
#   ref        how messages name it, e.g. "containers/nginx"
# Built with builtins only, once per query: a container typically has several violations, and
# computing these per violation through helper functions cost more than computing them here.
# (rego-cpp rejects `some i, x in` inside a comprehension, hence the index form.)
containers := [rec |
	some ps in pod_specs
	some field in ["containers", "initContainers", "ephemeralContainers"]
	ctrs := ps.spec[field]
	is_array(ctrs)
	some i
	ctr := ctrs[i]
	is_object(ctr)
	n := object.get(ctr, "name", "")
	name := object.get({"string": n}, type_name(n), "")
	img := object.get(ctr, "image", "")
	rec := {
		"container": ctr,
		"field": field,
		"pod": ps,
		"name": name,
		"image": object.get({"string": img}, type_name(img), ""),
		"path": concat("", [ps.path, ".", field, "[", format_int(i, 10), "]"]),
		"ref": concat("/", [field, name]),
	}
]

# volumes: one record per volume of every pod spec: {volume, index, pod}; see volume_name, volume_path.
volumes := [rec |
	some ps in pod_specs
	vols := ps.spec.volumes
	is_array(vols)
	some i
	vol := vols[i]
	is_object(vol)
	rec := {"volume": vol, "index": i, "pod": ps}
]

container_ref(c) := c.ref

volume_name(vol) := string_of(object.get(vol.volume, "name", ""))

# e.g. "spec.volumes[0]"
volume_path(vol) := concat("", [vol.pod.path, ".volumes[", format_int(vol.index, 10), "]"])

# The image of the container called `name` in a pod spec record ("" when there is none).
# (A comprehension and a default element rather than `else`: regorus's RVM loses the `else` value of a
# function whose first body iterates and fails.)
named_container_image(ps, name) := found[0] if {
	images := [img |
		some field in container_fields
		some ctr in array_of(object.get(ps.spec, field, []))
		is_object(ctr)
		object.get(ctr, "name", "") == name
		img := string_of(object.get(ctr, "image", ""))
	]
	found := array.concat(images, [""])
}

# ---------------------------------------------------------------------------------------------
# Violation builders

violation(msg, severity, controls, details) := {
	"msg": msg,
	"severity": severity,
	"controls": controls,
	"details": details,
}

# A violation of container record c; its message is the container ref followed by `suffix`.
# (The admission policies write this literal out instead of calling it: see the notes above.)
container_violation(c, suffix, severity, controls, extra) := {
	"msg": concat("", [c.ref, suffix]),
	"severity": severity,
	"controls": controls,
	"details": object.union({"container": c.name, "image": c.image, "path": c.path}, extra),
}

# A violation of pod spec record ps about its `field` (e.g. "hostPID").
pod_violation(ps, field, msg, severity, controls, extra) := {
	"msg": msg,
	"severity": severity,
	"controls": controls,
	"details": object.union({"path": concat(".", [ps.path, field])}, extra),
}

# A violation of volume record vol.
volume_violation(vol, msg, severity, controls, extra) := violation(
	msg,
	severity,
	controls,
	object.union({"path": volume_path(vol), "volume": volume_name(vol)}, extra),
)

# Which list of a pod spec record holds the container called `name` ("containers" when none does).
# (No `else`: see named_container_image.)
container_field(ps, name) := found[0] if {
	fields := [field |
		some field in container_fields
		some ctr in array_of(object.get(ps.spec, field, []))
		is_object(ctr)
		object.get(ctr, "name", "") == name
	]
	found := array.concat(fields, ["containers"])
}

# How messages name the container an annotation is about, e.g. "initContainers/setup".
annotation_container_ref(ps, name) := concat("/", [container_field(ps, name), name])

# An annotation naming a container (apparmor, legacy seccomp): container and image when found.
annotation_violation(ps, key, cname, msg, severity, controls) := violation(msg, severity, controls, d) if {
	img := named_container_image(ps, cname)
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

# Some entry of `entries` (see image_matches_prefix) covers the image.
image_matches_any(image, entries) if {
	some entry in entries
	image_matches_prefix(image, entry)
}

# What is wrong with an SELinux option, as messages say it: "type x is not allowed", "sets user x".
selinux_problem(field, value) := concat("", ["type ", text(value), " is not allowed"]) if field == "type"

selinux_problem(field, value) := concat("", ["sets ", field, " ", text(value)]) if field != "type"

# Allowed SELinux option values: the type empty or a container type (container_engine_t since
# Kubernetes 1.31); user and role unset.
selinux_allowed("type", value) if value in {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

selinux_allowed(field, value) if {
	field in {"user", "role"}
	value in {null, ""}
}

# The violation for a legacy seccomp annotation set to unconfined (seccomp_unconfined): the pod one,
# or a container one; undefined for any other key.
seccomp_annotation_violation(ps, key, controls) := violation(
	"pod annotation seccomp.security.alpha.kubernetes.io/pod is unconfined",
	"high",
	controls,
	{"path": concat("", [ps.meta_path, ".annotations[", key, "]"]), "annotation": key},
) if key == "seccomp.security.alpha.kubernetes.io/pod"

seccomp_annotation_violation(ps, key, controls) := annotation_violation(ps, key, cname, msg, "high", controls) if {
	startswith(key, "container.seccomp.security.alpha.kubernetes.io/")
	cname := trim_prefix(key, "container.seccomp.security.alpha.kubernetes.io/")
	msg := concat("", [annotation_container_ref(ps, cname), " seccomp annotation is unconfined"])
}

# ---------------------------------------------------------------------------------------------
# Objects other than pod specs: namespaces, RBAC roles and bindings, Services, ServiceAccounts

# The kind of the admitted object ("" when none): the object's own, else the request's.
# (A comprehension and a default element rather than `else`: see named_container_image.)
object_kind := found[0] if {
	kinds := [k |
		some k in [object.get(input, ["event", "request", "object", "kind"], ""), object.get(input, ["event", "request", "kind", "kind"], "")]
		is_string(k)
		k != ""
	]
	found := array.concat(kinds, [""])
}

# The namespace of the admitted object: the request's, else the object's metadata ("" when none, as
# for cluster-scoped objects).
object_namespace := found[0] if {
	namespaces := [ns |
		some ns in [object.get(input, ["event", "request", "namespace"], ""), object.get(input, ["event", "request", "object", "metadata", "namespace"], "")]
		is_string(ns)
		ns != ""
	]
	found := array.concat(namespaces, [""])
}

# The name of the admitted object ("" when none).
object_name := n if {
	n := object.get(input, ["event", "request", "object", "metadata", "name"], "")
	is_string(n)
} else := ""

# rbac_rules: one record per rule of an admitted Role or ClusterRole:
#   rule        the PolicyRule object
#   path        e.g. "rules[0]"
#   ref         how messages name it, e.g. "ClusterRole ops rules[0]"
#   verbs, resources, api_groups, non_resource_urls   the rule's lists, strings only ([] when unset)
# Empty for any other kind (the kind is checked first: a pod review pays only that).
rbac_rules := [rec |
	obj := input.event.request.object
	is_object(obj)
	k := object.get(obj, "kind", null)
	kind := object.get({"string": k}, type_name(k), object.get(input, ["event", "request", "kind", "kind"], ""))
	kind in {"Role", "ClusterRole"}
	rules := object.get(obj, "rules", [])
	is_array(rules)
	n := object.get(obj, ["metadata", "name"], "")
	name := object.get({"string": n}, type_name(n), "")
	some i
	rule := rules[i]
	is_object(rule)
	path := concat("", ["rules[", format_int(i, 10), "]"])
	rec := {
		"rule": rule,
		"path": path,
		"ref": concat("", [kind, " ", name, " ", path]),
		"verbs": strings_in(object.get(rule, "verbs", [])),
		"resources": strings_in(object.get(rule, "resources", [])),
		"api_groups": strings_in(object.get(rule, "apiGroups", [])),
		"non_resource_urls": strings_in(object.get(rule, "nonResourceURLs", [])),
	}
]

# The strings of x when it is an array ([] otherwise).
strings_in(x) := [s |
	some s in object.get({"array": x}, type_name(x), [])
	is_string(s)
]

# A rule covers the core API group (where secrets, pods and services are): "" or "*".
rule_covers_core_group(r) if "" in r.api_groups

rule_covers_core_group(r) if "*" in r.api_groups
