# METADATA
# title: Unconfined seccomp
# description: Pods and containers must not set the seccomp profile to Unconfined (PSS baseline).
# custom:
#   id: seccomp_unconfined
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"]
package tribunal.admission.seccomp_unconfined

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"]

pod_annotation := "seccomp.security.alpha.kubernetes.io/pod"

container_annotation_prefix := "container.seccomp.security.alpha.kubernetes.io/"

violations contains v if {
	some ps in k8s.pod_specs
	object.get(data.tribunal.lib.kubernetes.pod_security_context(ps.spec), ["seccompProfile", "type"], "") == "Unconfined"
	msg := "pod seccompProfile type is Unconfined"
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.seccompProfile.type", msg, "high", controls, {})
}

violations contains v if {
	some c in k8s.containers
	object.get(c.sc, ["seccompProfile", "type"], "") == "Unconfined"
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " seccompProfile type is Unconfined"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"field": "securityContext.seccompProfile.type"})
}

violations contains v if {
	some ps in k8s.pod_specs
	data.tribunal.lib.kubernetes.pod_annotations(ps)[pod_annotation] == "unconfined"
	msg := concat("", ["pod annotation ", pod_annotation, " is unconfined"])
	path := concat("", [ps.meta_path, ".annotations[", pod_annotation, "]"])
	v := data.tribunal.lib.kubernetes.violation(msg, "high", controls, {"path": path, "annotation": pod_annotation})
}

violations contains v if {
	some ps in k8s.pod_specs
	some key, value in data.tribunal.lib.kubernetes.pod_annotations(ps)
	startswith(key, container_annotation_prefix)
	value == "unconfined"
	cname := trim_prefix(key, container_annotation_prefix)
	msg := concat("", [data.tribunal.lib.kubernetes.annotation_container_ref(ps, cname), " seccomp annotation is unconfined"])
	v := data.tribunal.lib.kubernetes.annotation_violation(ps, key, cname, msg, "high", controls)
}
