# METADATA
# title: Resource requests
# description: Every container and init container must set resources.requests.cpu and resources.requests.memory (ephemeral containers are exempt). The scheduler places pods by their requests; resource_limits checks the limits.
# custom:
#   id: resource_requests
#   version: 1.0.0
#   severity: low
#   enforcement: warn
#   profile: hygiene
#   controls: ["nsa-cisa:pod-security:resource-limits"]
package tribunal.admission.resource_requests

import rego.v1

# Trivy KSV015 (CPU) and KSV016 (memory). Ephemeral containers cannot carry resources: exempt. (A Pod
# whose requests are unset gets its limits as requests from the API server's defaulting, before
# validating webhooks see it; workload templates are not defaulted.)
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	some resource in ["cpu", "memory"]
	object.get(c.container, ["resources", "requests", resource], null) in {null, ""}
	c.field != "ephemeralContainers"
	v := {
		"msg": concat("", [c.ref, " has no ", resource, " request"]),
		"severity": "low",
		"controls": ["nsa-cisa:pod-security:resource-limits"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": concat("", ["resources.requests.", resource])},
	}
}
