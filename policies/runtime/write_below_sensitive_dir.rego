# METADATA
# title: Write below a sensitive directory
# description: A process wrote below a binary, library, configuration or package-database directory (Falco "Write below etc", "Write below binary dir", "Write below root", "Write below rpm database" and the like).
# custom:
#   id: write_below_sensitive_dir
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   controls: ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:pod-security:immutable-fs", "cis-k8s:5.7.3"]
package tribunal.falco.write_below_sensitive_dir

import rego.v1

controls := ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:pod-security:immutable-fs", "cis-k8s:5.7.3"]

violations contains v if {
	"write" in data.tribunal.lib.falco.categories
	extra := {"file": data.tribunal.lib.falco.file, "flags": object.get(data.tribunal.lib.falco.string_fields, "evt.arg.flags", "")}
	v := {
		"msg": concat("", [data.tribunal.lib.falco.actor, " wrote below a sensitive directory: ", data.tribunal.lib.falco.file_label, " in ", data.tribunal.lib.falco.where, " (Falco rule '", data.tribunal.lib.falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.severity_at_least_high,
		"controls": controls,
		"details": object.union(data.tribunal.lib.falco.compact_details, {k: x |
			some k
			x := extra[k]
			x != ""
		}),
	}
}
