# METADATA
# title: Interactive containers
# description: Containers and init containers must not set tty or stdin to true; interactive sessions belong to ephemeral debug containers (kubectl debug), which are exempt.
# custom:
#   id: interactive_tty
#   version: 1.0.0
#   severity: low
#   enforcement: warn
#   profile: hygiene
#   controls: ["hygiene:interactive-containers"]
package tribunal.admission.interactive_tty

import rego.v1

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	some field in ["tty", "stdin"]
	c.container[field] == true
	c.field != "ephemeralContainers"
	v := {
		"msg": concat("", [c.ref, " sets ", field, ": true"]),
		"severity": "low",
		"controls": ["hygiene:interactive-containers"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": field},
	}
}
