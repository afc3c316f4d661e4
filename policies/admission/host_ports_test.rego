package tribunal.admission.host_ports

import rego.v1

test_input_host_port_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("nginx"), {"ports": [{"containerPort": 9000, "hostPort": 80}]})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx uses hostPort 80"
	v.details.port_path == "spec.containers[0].ports[0]"
}

test_input_init_container_host_port_in_deployment_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("init"), {"ports": [{"containerPort": 1}, {"containerPort": 53, "hostPort": 53}]})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "initContainers": [ctr]})
	count(results) == 1
	some v in results
	v.details.port_path == "spec.template.spec.initContainers[0].ports[1]"
}

test_input_host_port_zero_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("nginx"), {"ports": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81}]})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 0
}
