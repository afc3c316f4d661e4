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

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:privileged-containers", "cis-k8s:5.2.2", "nsa-cisa:pod-security:privileged"]

violations contains v if {
	some c in k8s.containers
	c.sc.privileged == true
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " is privileged"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"field": "securityContext.privileged"})
}
