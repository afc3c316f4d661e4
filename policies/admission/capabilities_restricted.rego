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

# capabilities.drop must include ALL (Windows pods are exempt).
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	not c.pod.windows
	drop := object.get(c.container, ["securityContext", "capabilities", "drop"], [])
	not "ALL" in object.get({"array": drop}, type_name(drop), [])
	v := {
		"msg": concat("", [c.ref, " capabilities.drop does not include ALL"]),
		"severity": "medium",
		"controls": ["pss-restricted:capabilities", "cis-k8s:5.2.8", "cis-k8s:5.2.10", "nsa-cisa:pod-security:capabilities"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.capabilities.drop"},
	}
}

# capabilities.add may hold NET_BIND_SERVICE only.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	add := object.get(c.container, ["securityContext", "capabilities", "add"], [])
	some cap in object.get({"array": add}, type_name(add), [])
	cap != "NET_BIND_SERVICE"
	not c.pod.windows
	v := {
		"msg": concat("", [c.ref, " adds capability ", data.tribunal.lib.kubernetes.text(cap), " (only NET_BIND_SERVICE may be added)"]),
		"severity": "medium",
		"controls": ["pss-restricted:capabilities", "cis-k8s:5.2.8", "cis-k8s:5.2.10", "nsa-cisa:pod-security:capabilities"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.capabilities.add", "capability": cap},
	}
}
