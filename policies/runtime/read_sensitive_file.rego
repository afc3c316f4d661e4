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

import data.tribunal.lib.falco

controls := ["nsa-cisa:threat-detection:runtime-monitoring", "nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"]

violations contains v if {
	"read" in falco.categories
	v := {
		"msg": concat("", [actor, " read sensitive file ", target, " in ", falco.where, " (Falco rule '", falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.severity_at_least("high"),
		"controls": controls,
		"details": data.tribunal.lib.falco.details({"file": falco.file}),
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
