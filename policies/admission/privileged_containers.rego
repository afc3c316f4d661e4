# METADATA
# title: Privileged containers
# description: Containers must not run privileged (PSS baseline).
# custom:
#   id: privileged_containers
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:privileged-containers", "cis-k8s:5.2.2", "nsa-cisa:pod-security:privileged"]
package tribunal.admission.privileged_containers

import rego.v1

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.container.securityContext.privileged == true
	v := {
		"msg": concat("", [c.ref, " is privileged"]),
		"severity": "high",
		"controls": ["pss-baseline:privileged-containers", "cis-k8s:5.2.2", "nsa-cisa:pod-security:privileged"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.privileged"},
	}
}
