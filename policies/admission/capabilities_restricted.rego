# METADATA
# title: Capabilities (restricted)
# description: Every container must drop ALL capabilities and may add back only NET_BIND_SERVICE (PSS restricted).
# custom:
#   id: capabilities_restricted
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: pss-restricted
#   controls: ["pss-restricted:capabilities", "cis-k8s:5.2.8", "cis-k8s:5.2.10", "nsa-cisa:pod-security:capabilities"]
package tribunal.admission.capabilities_restricted

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-restricted:capabilities", "cis-k8s:5.2.8", "cis-k8s:5.2.10", "nsa-cisa:pod-security:capabilities"]

capabilities(c) := data.tribunal.lib.kubernetes.object_of(object.get(c.sc, "capabilities", {}))

drops_all(c) if {
	some cap in data.tribunal.lib.kubernetes.array_of(object.get(capabilities(c), "drop", []))
	cap == "ALL"
}

violations contains v if {
	some c in k8s.containers
	not data.tribunal.lib.kubernetes.is_windows(c.pod.spec)
	not drops_all(c)
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " capabilities.drop does not include ALL"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "medium", controls, {"field": "securityContext.capabilities.drop"})
}

violations contains v if {
	some c in k8s.containers
	not data.tribunal.lib.kubernetes.is_windows(c.pod.spec)
	some cap in data.tribunal.lib.kubernetes.array_of(object.get(capabilities(c), "add", []))
	cap != "NET_BIND_SERVICE"
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " adds capability ", data.tribunal.lib.kubernetes.text(cap), " (only NET_BIND_SERVICE may be added)"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "medium", controls, {"field": "securityContext.capabilities.add", "capability": cap})
}
