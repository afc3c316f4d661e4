package tribunal.falco.unexpected_outbound_connection

import rego.v1

tagged_alert_input(rule, prio, fields, tags) := {
	"kind": "falco",
	"event": {"rule": rule, "priority": prio, "output_fields": fields, "tags": tags},
	"subject": {},
	"context": {},
}

conn_fields := {
	"container.id": "1232fb36c811",
	"container.image.repository": "falcosecurity/event-generator",
	"container.image.tag": "latest",
	"evt.type": "connect",
	"fd.name": "172.17.0.2:41820->1.2.3.4:4444",
	"proc.name": "curl",
}

test_unexpected_outbound_destination_violates if {
	vs := violations with input as tagged_alert_input("Unexpected outbound connection destination", "Notice", conn_fields, ["network"])
	count(vs) == 1
	some v in vs
	v.severity == "medium"
	v.details.destination == "1.2.3.4:4444"
	contains(v.msg, "1.2.3.4:4444")
	# an outbound connection shows nothing of a namespace's NetworkPolicies (CIS 5.3.2): only runtime monitoring
	v.controls == ["nsa-cisa:threat-detection:runtime-monitoring"]
}

test_c2_connection_is_at_least_high if {
	vs := violations with input as tagged_alert_input("Outbound Connection to C2 Servers", "Warning", conn_fields, ["network"])
	some v in vs
	v.severity == "high"
}

test_connect_by_unexpected_process_violates_by_fields if {
	vs := violations with input as tagged_alert_input("Custom egress rule", "Warning", conn_fields, ["network", "container"])
	count(vs) == 1
}

test_low_priority_connect_is_compliant if {
	count(violations) == 0 with input as tagged_alert_input("Contact K8S API Server From Container", "Notice", conn_fields, ["network"])
}

test_non_network_alert_is_compliant if {
	count(violations) == 0 with input as tagged_alert_input("Write below etc", "Error", {"fd.name": "/etc/x"}, [])
}
