# METADATA
# title: Privilege escalation
# description: Every container must set allowPrivilegeEscalation to false (PSS restricted).
# custom:
#   id: privilege_escalation
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: pss-restricted
#   controls: ["pss-restricted:privilege-escalation", "cis-k8s:5.2.6", "nsa-cisa:pod-security:privilege-escalation"]
package tribunal.admission.privilege_escalation

import rego.v1

# allowPrivilegeEscalation must be false (Windows pods are exempt).
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	value := object.get(c.container, ["securityContext", "allowPrivilegeEscalation"], null)
	value != false
	not c.pod.windows
	shown := object.get({"null": "unset"}, type_name(value), value)
	v := {
		"msg": concat("", [c.ref, " allowPrivilegeEscalation is not false (", data.tribunal.lib.kubernetes.text(shown), ")"]),
		"severity": "medium",
		"controls": ["pss-restricted:privilege-escalation", "cis-k8s:5.2.6", "nsa-cisa:pod-security:privilege-escalation"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.allowPrivilegeEscalation"},
	}
}
