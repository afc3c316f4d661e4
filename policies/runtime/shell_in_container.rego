# METADATA
# title: Shell in container
# description: An interactive shell was spawned inside a container (Falco "Terminal shell in container", "Run shell untrusted" and the like, or kubectl exec into a pod with a shell).
# custom:
#   id: shell_in_container
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   controls: ["nsa-cisa:threat-detection:runtime-monitoring"]
package tribunal.falco.shell_in_container

import rego.v1

import data.tribunal.lib.falco

controls := ["nsa-cisa:threat-detection:runtime-monitoring"]

violations contains v if {
	"shell" in falco.categories
	v := {
		"msg": concat("", ["Shell '", shell, "' spawned in ", falco.where, " (Falco rule '", falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.severity_at_least("high"),
		"controls": controls,
		"details": data.tribunal.lib.falco.details({"shell": shell, "exec_command": exec_command}),
	}
}

exec_command := data.tribunal.lib.falco.field_string("ka.uri.param[command]")

shell := falco.process if {
	falco.process != ""
} else := exec_command if {
	exec_command != ""
} else := "shell"
