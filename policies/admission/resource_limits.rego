# METADATA
# title: Resource limits
# description: Every container and init container must set resources.limits.cpu and resources.limits.memory (ephemeral containers are exempt).
# custom:
#   id: resource_limits
#   version: 1.0.0
#   severity: low
#   enforcement: warn
#   profile: hygiene
#   controls: ["nsa-cisa:pod-security:resource-limits"]
package tribunal.admission.resource_limits

import rego.v1

# Ephemeral containers cannot carry resources: they are exempt.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	some resource in ["cpu", "memory"]
	object.get(c.container, ["resources", "limits", resource], null) in {null, ""}
	c.field != "ephemeralContainers"
	v := {
		"msg": concat("", [c.ref, " has no ", resource, " limit"]),
		"severity": "low",
		"controls": ["nsa-cisa:pod-security:resource-limits"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": concat("", ["resources.limits.", resource])},
	}
}
