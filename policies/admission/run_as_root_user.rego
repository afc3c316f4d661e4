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

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-restricted:running-as-non-root-user", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"]

violations contains v if {
	some ps in k8s.pod_specs
	object.get(data.tribunal.lib.kubernetes.pod_security_context(ps.spec), "runAsUser", null) == 0
	msg := "pod runAsUser is 0 (root)"
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.runAsUser", msg, "high", controls, {})
}

violations contains v if {
	some c in k8s.containers
	object.get(c.sc, "runAsUser", null) == 0
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " runAsUser is 0 (root)"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"field": "securityContext.runAsUser"})
}
