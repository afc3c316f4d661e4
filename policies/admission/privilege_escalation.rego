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

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-restricted:privilege-escalation", "cis-k8s:5.2.6", "nsa-cisa:pod-security:privilege-escalation"]

violations contains v if {
	some c in k8s.containers
	not data.tribunal.lib.kubernetes.is_windows(c.pod.spec)
	value := object.get(c.sc, "allowPrivilegeEscalation", null)
	value != false
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " allowPrivilegeEscalation is not false (", data.tribunal.lib.kubernetes.text(shown(value)), ")"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "medium", controls, {"field": "securityContext.allowPrivilegeEscalation"})
}

shown(value) := "unset" if {
	value == null
} else := value
