# METADATA
# title: AppArmor
# description: Containers must not run AppArmor-unconfined (PSS baseline).
# custom:
#   id: apparmor
#   version: 1.1.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:apparmor", "cis-k8s:5.7.3", "nsa-cisa:pod-security:apparmor"]
package tribunal.admission.apparmor

import rego.v1

# AppArmor annotations: only an empty value, runtime/default and localhost/* are allowed (as Pod
# Security Admission's appArmorProfile check: an empty annotation sets no profile).
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	some key, value in ps.annotations
	startswith(key, "container.apparmor.security.beta.kubernetes.io/")
	value != "runtime/default"
	value != ""
	not startswith(object.get({"string": value}, type_name(value), ""), "localhost/")
	cname := trim_prefix(key, "container.apparmor.security.beta.kubernetes.io/")
	msg := concat("", [data.tribunal.lib.kubernetes.annotation_container_ref(ps, cname), " AppArmor annotation is ", data.tribunal.lib.kubernetes.text(value), " (allowed: empty, runtime/default, localhost/*)"])
	v := data.tribunal.lib.kubernetes.annotation_violation(ps, key, cname, msg, "high", ["pss-baseline:apparmor", "cis-k8s:5.7.3", "nsa-cisa:pod-security:apparmor"])
}

violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	ps.spec.securityContext.appArmorProfile.type == "Unconfined"
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.appArmorProfile", "pod appArmorProfile type is Unconfined", "high", ["pss-baseline:apparmor", "cis-k8s:5.7.3", "nsa-cisa:pod-security:apparmor"], {})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.container.securityContext.appArmorProfile.type == "Unconfined"
	v := {
		"msg": concat("", [c.ref, " appArmorProfile type is Unconfined"]),
		"severity": "high",
		"controls": ["pss-baseline:apparmor", "cis-k8s:5.7.3", "nsa-cisa:pod-security:apparmor"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.appArmorProfile"},
	}
}
