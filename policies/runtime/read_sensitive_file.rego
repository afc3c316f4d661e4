# METADATA
# title: Read of a sensitive file
# description: A process read a credential or authentication file such as /etc/shadow, /etc/sudoers or SSH keys (Falco "Read sensitive file untrusted", "Read sensitive file trusted after startup" and the like).
# custom:
#   id: read_sensitive_file
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   controls: ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"]
package tribunal.falco.read_sensitive_file

import rego.v1

controls := ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"]

violations contains v if {
	"read" in data.tribunal.lib.falco.categories
	extra := {"file": data.tribunal.lib.falco.file}
	v := {
		"msg": concat("", [data.tribunal.lib.falco.actor, " read sensitive file ", data.tribunal.lib.falco.file_label, " in ", data.tribunal.lib.falco.where, " (Falco rule '", data.tribunal.lib.falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.severity_at_least_high,
		"controls": controls,
		"details": object.union(data.tribunal.lib.falco.compact_details, {k: x |
			some k
			x := extra[k]
			x != ""
		}),
	}
}
