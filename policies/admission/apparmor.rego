# METADATA
# title: AppArmor
# description: Containers must not run AppArmor-unconfined (PSS baseline).
# custom:
#   id: apparmor
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:apparmor", "cis-k8s:5.7.3", "nsa-cisa:pod-security:apparmor"]
package tribunal.admission.apparmor

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:apparmor", "cis-k8s:5.7.3", "nsa-cisa:pod-security:apparmor"]

annotation_prefix := "container.apparmor.security.beta.kubernetes.io/"

allowed_annotation(value) if value == "runtime/default"

allowed_annotation(value) if {
	is_string(value)
	startswith(value, "localhost/")
}

violations contains v if {
	some ps in k8s.pod_specs
	some key, value in data.tribunal.lib.kubernetes.pod_annotations(ps)
	startswith(key, annotation_prefix)
	not allowed_annotation(value)
	cname := trim_prefix(key, annotation_prefix)
	msg := concat("", [data.tribunal.lib.kubernetes.annotation_container_ref(ps, cname), " AppArmor annotation is ", data.tribunal.lib.kubernetes.text(value), " (allowed: runtime/default, localhost/*)"])
	v := data.tribunal.lib.kubernetes.annotation_violation(ps, key, cname, msg, "high", controls)
}

violations contains v if {
	some ps in k8s.pod_specs
	object.get(data.tribunal.lib.kubernetes.pod_security_context(ps.spec), ["appArmorProfile", "type"], "") == "Unconfined"
	msg := "pod appArmorProfile type is Unconfined"
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.appArmorProfile", msg, "high", controls, {})
}

violations contains v if {
	some c in k8s.containers
	object.get(c.sc, ["appArmorProfile", "type"], "") == "Unconfined"
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " appArmorProfile type is Unconfined"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"field": "securityContext.appArmorProfile"})
}
