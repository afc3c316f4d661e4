package tribunal.admission.service_type

import rego.v1

service(spec) := data.tribunal.lib.kubernetes.mock_input({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec})

test_input_node_port_service_not_allowed if {
	results := violations with input as service({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}) with data.tribunal.config.exposed_service_types as ["NodePort", "LoadBalancer"]
	count(results) == 1
	some v in results
	v.msg == "Service web is of type NodePort"
	v.controls == ["hygiene:service-exposure"]
}

test_input_load_balancer_service_not_allowed if {
	results := violations with input as service({"type": "LoadBalancer", "ports": [{"port": 443}]}) with data.tribunal.config.exposed_service_types as ["NodePort", "LoadBalancer"]
	count(results) == 1
}

test_input_cluster_ip_service_allowed if {
	results := violations with input as service({"ports": [{"port": 80}]}) with data.tribunal.config.exposed_service_types as ["NodePort", "LoadBalancer"]
	count(results) == 0
	explicit := violations with input as service({"type": "ClusterIP"}) with data.tribunal.config.exposed_service_types as ["NodePort", "LoadBalancer"]
	count(explicit) == 0
}

test_input_load_balancer_allowed_by_configuration if {
	results := violations with input as service({"type": "LoadBalancer"}) with data.tribunal.config.exposed_service_types as ["NodePort"]
	count(results) == 0
}
