# METADATA
# title: Root user
# description: Pods and containers must not set runAsUser to 0.
# custom:
#   id: run_as_root_user
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-restricted
#   controls: ["pss-restricted:running-as-non-root-user", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"]
package tribunal.admission.run_as_root_user

import rego.v1

violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	ps.spec.securityContext.runAsUser == 0
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.runAsUser", "pod runAsUser is 0 (root)", "high", ["pss-restricted:running-as-non-root-user", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"], {})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.container.securityContext.runAsUser == 0
	v := {
		"msg": concat("", [c.ref, " runAsUser is 0 (root)"]),
		"severity": "high",
		"controls": ["pss-restricted:running-as-non-root-user", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.runAsUser"},
	}
}
