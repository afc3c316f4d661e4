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

import data.tribunal.lib.kubernetes as k8s

controls := ["nsa-cisa:pod-security:resource-limits"]

limited_fields := {"containers", "initContainers"}

limit(c, resource) := object.get(
	data.tribunal.lib.kubernetes.object_of(object.get(data.tribunal.lib.kubernetes.object_of(object.get(c.container, "resources", {})), "limits", {})),
	resource,
	null,
)

violations contains v if {
	some c in k8s.containers
	limited_fields[c.field]
	some resource in ["cpu", "memory"]
	missing(limit(c, resource))
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " has no ", resource, " limit"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "low", controls, {"field": concat("", ["resources.limits.", resource])})
}

missing(value) if value == null

missing(value) if value == ""
