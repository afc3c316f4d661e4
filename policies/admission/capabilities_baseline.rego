# METADATA
# title: Added capabilities (baseline)
# description: Containers may only add capabilities from the PSS baseline list (names compared literally).
# custom:
#   id: capabilities_baseline
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:capabilities", "cis-k8s:5.2.9", "cis-k8s:5.2.8", "nsa-cisa:pod-security:capabilities"]
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
	# Adding NET_RAW (or ALL) also speaks to CIS 5.2.8 (NET_RAW); any other capability does not.
	# (A lookup rather than a comprehension: regorus's RVM finds nothing in the latter here.)
	net_raw := object.get(
		{"NET_RAW": ["cis-k8s:5.2.8"], "CAP_NET_RAW": ["cis-k8s:5.2.8"], "ALL": ["cis-k8s:5.2.8"]},
		upper(data.tribunal.lib.kubernetes.text(cap)), [],
	)
	v := {
		"msg": concat("", [c.ref, " adds capability ", data.tribunal.lib.kubernetes.text(cap)]),
		"severity": "high",
		"controls": array.concat(["pss-baseline:capabilities", "cis-k8s:5.2.9", "nsa-cisa:pod-security:capabilities"], net_raw),
		"details": {"container": c.name, "image": c.image, "path": c.path, "capability": cap},
	}
}
