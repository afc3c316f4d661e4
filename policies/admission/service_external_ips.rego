# METADATA
# title: Service external IPs
# description: Services must not set spec.externalIPs; whoever may create a Service can then intercept the traffic to those addresses (CVE-2020-8554).
# custom:
#   id: service_external_ips
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: network
#   controls: ["hygiene:service-exposure"]
package tribunal.admission.service_external_ips

import rego.v1

# What the API server's DenyServiceExternalIPs admission plugin refuses, as a policy with exceptions.
violations contains v if {
	svc := input.event.request.object
	svc.kind == "Service"
	ips := svc.spec.externalIPs
	is_array(ips)
	count(ips) > 0
	name := data.tribunal.lib.kubernetes.object_name
	v := {
		"msg": concat("", ["Service ", name, " sets externalIPs ", concat(", ", data.tribunal.lib.kubernetes.strings_in(ips))]),
		"severity": "high",
		"controls": ["hygiene:service-exposure"],
		"details": {"path": "spec.externalIPs", "external_ips": ips, "service": name},
	}
}
