# METADATA
# title: Unexpected outbound connection
# description: A workload opened an outbound network connection Falco flags as unexpected or malicious (Falco "Unexpected outbound connection destination", "Outbound Connection to C2 Servers", "Disallowed outbound connection" and the like, or a connect by a process a rule does not expect).
# custom:
#   id: unexpected_outbound_connection
#   version: 1.0.0
#   severity: medium
#   enforcement: deny
#   controls: ["nsa-cisa:threat-detection:runtime-monitoring"]
package tribunal.falco.unexpected_outbound_connection

import rego.v1

controls := ["nsa-cisa:threat-detection:runtime-monitoring"]

violations contains v if {
	"outbound" in data.tribunal.lib.falco.categories
	extra := {
		"connection": data.tribunal.lib.falco.connection,
		"destination": data.tribunal.lib.falco.destination,
		"protocol": object.get(data.tribunal.lib.falco.string_fields, "fd.l4proto", ""),
	}
	v := {
		"msg": concat("", [data.tribunal.lib.falco.actor, " made an unexpected outbound connection to ", data.tribunal.lib.falco.destination, " from ", data.tribunal.lib.falco.where, " (Falco rule '", data.tribunal.lib.falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.outbound_severity,
		"controls": controls,
		"details": object.union(data.tribunal.lib.falco.compact_details, {k: x |
			some k
			x := extra[k]
			x != ""
		}),
	}
}
