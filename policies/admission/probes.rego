# METADATA
# title: Liveness and readiness probes
# description: Every container (and every sidecar, an init container with restartPolicy Always) must have a livenessProbe and a readinessProbe.
# custom:
#   id: probes
#   version: 1.0.0
#   severity: low
#   enforcement: dryrun
#   profile: hygiene
#   controls: ["hygiene:probes"]
package tribunal.admission.probes

import rego.v1

# Init containers run to completion and cannot have these probes, except sidecars (restartPolicy:
# Always); ephemeral containers cannot have probes.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	some probe in ["livenessProbe", "readinessProbe"]
	object.get(c.container, probe, null) == null
	c.field != "ephemeralContainers"
	not c.field == "initContainers" # a sidecar (below) or no probe possible
	v := {
		"msg": concat("", [c.ref, " has no ", probe]),
		"severity": "low",
		"controls": ["hygiene:probes"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": probe},
	}
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.field == "initContainers"
	c.container.restartPolicy == "Always"
	some probe in ["livenessProbe", "readinessProbe"]
	object.get(c.container, probe, null) == null
	v := {
		"msg": concat("", [c.ref, " (a sidecar) has no ", probe]),
		"severity": "low",
		"controls": ["hygiene:probes"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": probe},
	}
}
