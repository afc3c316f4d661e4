# METADATA
# title: Unexpected outbound connection
# description: A workload opened an outbound network connection Falco flags as unexpected or malicious (Falco "Unexpected outbound connection destination", "Outbound Connection to C2 Servers", "Disallowed outbound connection" and the like, or a connect by a process a rule does not expect).
# custom:
#   id: unexpected_outbound_connection
#   version: 1.0.0
#   severity: medium
#   enforcement: deny
#   controls: ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:network-separation:network-policies", "cis-k8s:5.3.2"]
package tribunal.falco.unexpected_outbound_connection

import rego.v1

import data.tribunal.lib.falco

controls := ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:network-separation:network-policies", "cis-k8s:5.3.2"]

violations contains v if {
	"outbound" in falco.categories
	v := {
		"msg": concat("", [actor, " made an unexpected outbound connection to ", destination, " from ", falco.where, " (Falco rule '", falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.severity_at_least(floor),
		"controls": controls,
		"details": data.tribunal.lib.falco.details({
			"connection": falco.connection,
			"destination": destination,
			"protocol": data.tribunal.lib.falco.field_string("fd.l4proto"),
		}),
	}
}

# Known command-and-control destinations are worse than an unlisted one.
floor := "high" if {
	c2
} else := "medium"

c2 if contains(falco.rule_lower, "c2")

c2 if "c2" in falco.tags

c2 if contains(falco.rule_lower, "command and control")

actor := concat("", ["Process '", falco.process, "'"]) if {
	falco.process != ""
} else := concat("", ["Command '", falco.cmdline, "'"]) if {
	falco.cmdline != ""
} else := "A process"

# fd.rip:fd.rport when reported, else the remote side of fd.name ("a:1->b:2"), else fd.name.
destination := concat("", [rip, ":", data.tribunal.lib.falco.field_string("fd.rport")]) if {
	rip := data.tribunal.lib.falco.field_string("fd.rip")
	rip != ""
} else := d if {
	parts := split(falco.connection, "->")
	count(parts) == 2
	d := parts[1]
} else := falco.connection if {
	falco.connection != ""
} else := "(destination not reported)"
