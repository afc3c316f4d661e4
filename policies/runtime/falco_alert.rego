# METADATA
# title: Falco alert
# description: Any other Falco alert of priority Warning or higher (no named runtime policy claims it), so that no alert is silently dropped. Severity follows the Falco priority.
# custom:
#   id: falco_alert
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   controls: ["nsa-cisa:threat-detection:runtime-monitoring"]
package tribunal.falco.falco_alert

import rego.v1

controls := ["nsa-cisa:threat-detection:runtime-monitoring"]

violations contains v if {
	data.tribunal.lib.falco.unclaimed
	data.tribunal.lib.falco.priority_warning_or_above
	extra := {"file": data.tribunal.lib.falco.file}
	v := {
		"msg": concat("", ["Falco rule '", data.tribunal.lib.falco.rule_label, "' (", data.tribunal.lib.falco.priority, ") fired in ", data.tribunal.lib.falco.where, data.tribunal.lib.falco.process_suffix]),
		"severity": data.tribunal.lib.falco.severity,
		"controls": controls,
		"details": object.union(data.tribunal.lib.falco.compact_details, {k: x |
			some k
			x := extra[k]
			x != ""
		}),
	}
}
