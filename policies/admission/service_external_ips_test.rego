package tribunal.admission.service_external_ips

import rego.v1

service(spec) := data.tribunal.lib.kubernetes.mock_input({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec})

test_input_service_external_ips_not_allowed if {
	results := violations with input as service({"ports": [{"port": 80}], "externalIPs": ["203.0.113.10", "203.0.113.11"]})
	count(results) == 1
	some v in results
	v.msg == "Service web sets externalIPs 203.0.113.10, 203.0.113.11"
	v.controls == ["hygiene:service-exposure"]
}

test_input_service_without_external_ips_allowed if {
	results := violations with input as service({"ports": [{"port": 80}], "externalIPs": []})
	count(results) == 0
	none := violations with input as service({"ports": [{"port": 80}]})
	count(none) == 0
}

test_input_pod_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	count(results) == 0
}
