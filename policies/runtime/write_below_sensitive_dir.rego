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

import data.tribunal.lib.falco

controls := ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:pod-security:immutable-fs", "cis-k8s:5.7.3"]

violations contains v if {
	"write" in falco.categories
	v := {
		"msg": concat("", [actor, " wrote below a sensitive directory: ", target, " in ", falco.where, " (Falco rule '", falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.severity_at_least("high"),
		"controls": controls,
		"details": data.tribunal.lib.falco.details({"file": falco.file, "flags": data.tribunal.lib.falco.field_string("evt.arg.flags")}),
	}
}

actor := concat("", ["Process '", falco.process, "'"]) if {
	falco.process != ""
} else := concat("", ["Command '", falco.cmdline, "'"]) if {
	falco.cmdline != ""
} else := "A process"

target := falco.file if {
	falco.file != ""
} else := "(file not reported)"
