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

import data.tribunal.lib.falco

controls := ["nsa-cisa:threat-detection:runtime-monitoring"]

violations contains v if {
	data.tribunal.lib.falco.priority_at_least("warning")
	count(falco.categories) == 0
	v := {
		"msg": concat("", ["Falco rule '", rule_name, "' (", falco.priority, ") fired in ", falco.where, what]),
		"severity": falco.severity,
		"controls": controls,
		"details": data.tribunal.lib.falco.details({"file": falco.file}),
	}
}

rule_name := falco.rule if {
	falco.rule != ""
} else := "(unnamed rule)"

what := concat("", [": process '", falco.process, "'"]) if {
	falco.process != ""
} else := concat("", [": ", falco.cmdline]) if {
	falco.cmdline != ""
} else := ""
