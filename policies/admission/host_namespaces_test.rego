package tribunal.admission.host_namespaces

import rego.v1

test_input_host_pid_and_ipc_not_allowed if {
	spec := {"hostPID": true, "hostIPC": true, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 2
	paths := {v.details.path | some v in results}
	paths == {"spec.hostPID", "spec.hostIPC"}
}

test_input_host_network_in_deployment_not_allowed if {
	spec := {"hostNetwork": true, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.details.path == "spec.template.spec.hostNetwork"
	"cis-k8s:5.2.5" in v.controls
}

test_input_host_namespaces_false_allowed if {
	spec := {"hostNetwork": false, "hostPID": false, "hostIPC": false, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}
