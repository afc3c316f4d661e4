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

controls := ["nsa-cisa:threat-detection:runtime-monitoring"]

violations contains v if {
	"shell" in data.tribunal.lib.falco.categories
	extra := {"shell": data.tribunal.lib.falco.shell, "exec_command": data.tribunal.lib.falco.exec_command}
	v := {
		"msg": concat("", ["Shell '", data.tribunal.lib.falco.shell, "' spawned in ", data.tribunal.lib.falco.where, " (Falco rule '", data.tribunal.lib.falco.rule, "')"]),
		"severity": data.tribunal.lib.falco.severity_at_least_high,
		"controls": controls,
		"details": object.union(data.tribunal.lib.falco.compact_details, {k: x |
			some k
			x := extra[k]
			x != ""
		}),
	}
}
