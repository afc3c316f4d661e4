# METADATA
# title: Falco alert
# description: Any other Falco alert no named runtime policy claims, so that no alert is silently dropped. A rule of Falco's default rule set (the catalogue in policies/data/falco_rules.json) is judged at any priority, with the severity and controls the catalogue gives it ("Launch Privileged Container" comes at Informational yet speaks to CIS 5.2.2); any other rule when its priority is Warning or higher, with a severity that follows the priority.
# custom:
#   id: falco_alert
#   version: 1.1.0
#   severity: medium
#   enforcement: warn
#   controls: ["nsa-cisa:threat-detection:runtime-monitoring", "cis-k8s:5.2.2", "cis-k8s:5.2.7", "cis-k8s:5.2.8", "cis-k8s:5.2.9", "cis-k8s:5.2.12", "nsa-cisa:pod-security:privileged", "nsa-cisa:pod-security:capabilities", "nsa-cisa:pod-security:host-filesystem", "nsa-cisa:pod-security:non-root-containers", "nsa-cisa:pod-security:immutable-fs"]
package tribunal.falco.falco_alert

import rego.v1

controls := ["nsa-cisa:threat-detection:runtime-monitoring"]

# A rule of the catalogue: judged at any priority, with its severity and controls.
violations contains v if {
	data.tribunal.lib.falco.unclaimed
	data.tribunal.lib.falco.known
	extra := {"file": data.tribunal.lib.falco.file, "description": data.tribunal.lib.falco.known_description}
	v := {
		"msg": concat("", ["Falco rule '", data.tribunal.lib.falco.rule_label, "' (", data.tribunal.lib.falco.priority, ") fired in ", data.tribunal.lib.falco.where, data.tribunal.lib.falco.process_suffix]),
		"severity": data.tribunal.lib.falco.known_severity,
		"controls": data.tribunal.lib.falco.known_controls,
		"details": object.union(data.tribunal.lib.falco.compact_details, {k: x |
			some k
			x := extra[k]
			x != ""
		}),
	}
}

# Any other rule: judged when its priority is Warning or higher, by its priority.
violations contains v if {
	data.tribunal.lib.falco.unclaimed
	not data.tribunal.lib.falco.known
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
