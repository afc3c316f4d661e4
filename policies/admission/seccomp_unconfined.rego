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

violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	ps.spec.securityContext.seccompProfile.type == "Unconfined"
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.seccompProfile.type", "pod seccompProfile type is Unconfined", "high", ["pss-baseline:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"], {})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.container.securityContext.seccompProfile.type == "Unconfined"
	v := {
		"msg": concat("", [c.ref, " seccompProfile type is Unconfined"]),
		"severity": "high",
		"controls": ["pss-baseline:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.seccompProfile.type"},
	}
}

# Legacy annotations: seccomp.security.alpha.kubernetes.io/pod and container.seccomp.security.alpha.kubernetes.io/<name>.
# (One body for both annotations; seccomp_annotation_violation tells them apart.)
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	some key, value in ps.annotations
	value == "unconfined"
	contains(key, "seccomp.security.alpha.kubernetes.io/")
	v := data.tribunal.lib.kubernetes.seccomp_annotation_violation(ps, key, ["pss-baseline:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"])
}
