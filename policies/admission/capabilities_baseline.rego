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

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:capabilities", "cis-k8s:5.2.9", "nsa-cisa:pod-security:capabilities"]

allowed_capabilities := {
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

violations contains v if {
	some c in k8s.containers
	some cap in data.tribunal.lib.kubernetes.array_of(object.get(data.tribunal.lib.kubernetes.object_of(object.get(c.sc, "capabilities", {})), "add", []))
	not allowed_capabilities[cap]
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " adds capability ", data.tribunal.lib.kubernetes.text(cap)])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"capability": cap})
}
