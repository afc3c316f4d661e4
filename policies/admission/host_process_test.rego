package tribunal.admission.host_process

import rego.v1

test_input_container_host_process_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"windowsOptions": {"hostProcess": true}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.details.container == "nginx"
}

test_input_pod_host_process_in_deployment_not_allowed if {
	spec := {"hostNetwork": true, "securityContext": {"windowsOptions": {"hostProcess": true}}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.details.path == "spec.template.spec.securityContext.windowsOptions.hostProcess"
}

test_input_host_process_false_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"windowsOptions": {"hostProcess": false, "runAsUserName": "ContainerUser"}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 0
}
