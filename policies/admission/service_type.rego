# METADATA
# title: Exposed Service types
# description: Services must not be of a type in data.tribunal.config.exposed_service_types (default NodePort and LoadBalancer), which open the workload outside the cluster; expose HTTP through an Ingress or Gateway instead.
# custom:
#   id: service_type
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: network
#   controls: ["hygiene:service-exposure"]
package tribunal.admission.service_type

import rego.v1

violations contains v if {
	svc := input.event.request.object
	svc.kind == "Service"
	type := svc.spec.type
	is_string(type)
	exposed := data.tribunal.config.exposed_service_types
	is_array(exposed)
	type in exposed
	name := data.tribunal.lib.kubernetes.object_name
	v := {
		"msg": concat("", ["Service ", name, " is of type ", type]),
		"severity": "medium",
		"controls": ["hygiene:service-exposure"],
		"details": {"path": "spec.type", "type": type, "service": name},
	}
}
