# METADATA
# title: Added capabilities (baseline)
# description: Containers may only add capabilities from the PSS baseline list (names compared literally).
# custom:
#   id: capabilities_baseline
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:capabilities", "cis-k8s:5.2.9", "nsa-cisa:pod-security:capabilities"]
package tribunal.admission.capabilities_baseline

import rego.v1

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	add := object.get(c.container, ["securityContext", "capabilities", "add"], [])
	some cap in object.get({"array": add}, type_name(add), [])
	not cap in {
		"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
		"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
	}
	v := {
		"msg": concat("", [c.ref, " adds capability ", data.tribunal.lib.kubernetes.text(cap)]),
		"severity": "high",
		"controls": ["pss-baseline:capabilities", "cis-k8s:5.2.9", "nsa-cisa:pod-security:capabilities"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "capability": cap},
	}
}
