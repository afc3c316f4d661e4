# METADATA
# title: Run as non-root
# description: runAsNonRoot must be true at pod level (with no container setting it false) or on every container (PSS restricted).
# custom:
#   id: run_as_non_root
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: pss-restricted
#   controls: ["pss-restricted:running-as-non-root", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"]
package tribunal.admission.run_as_non_root

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-restricted:running-as-non-root", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"]

# The container's own setting wins; otherwise the pod's applies.
effective(c) := value if {
	value := object.get(c.sc, "runAsNonRoot", null)
	value != null
} else := object.get(c.pod_sc, "runAsNonRoot", null)

violations contains v if {
	some c in k8s.containers
	object.get(c.sc, "runAsNonRoot", null) == false
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " runAsNonRoot is not true (false)"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "medium", controls, {"field": "securityContext.runAsNonRoot"})
}

violations contains v if {
	some c in k8s.containers
	object.get(c.sc, "runAsNonRoot", null) == null
	effective(c) != true
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " runAsNonRoot is not true (unset on the container and the pod)"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "medium", controls, {"field": "securityContext.runAsNonRoot"})
}
