package tribunal.admission.run_as_root_user

import rego.v1

test_input_container_run_as_root_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"runAsUser": 0, "runAsGroup": 0})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx runAsUser is 0 (root)"
}

test_input_pod_run_as_root_in_deployment_not_allowed if {
	spec := {"securityContext": {"runAsUser": 0}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "initContainers": [data.tribunal.lib.kubernetes.mock_container_sc("init", {"runAsUser": 0})]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 2
}

test_input_run_as_non_zero_user_allowed if {
	spec := {"securityContext": {"runAsUser": 1000}, "containers": [data.tribunal.lib.kubernetes.mock_container_sc("app", {"runAsUser": 65534})]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}

# Kubernetes 1.35: UID 0 in a user namespace (hostUsers: false) is allowed, in templates too.
test_input_run_as_root_with_host_users_false_allowed if {
	spec := {"hostUsers": false, "securityContext": {"runAsUser": 0}, "containers": [data.tribunal.lib.kubernetes.mock_container_sc("app", {"runAsUser": 0})], "initContainers": [data.tribunal.lib.kubernetes.mock_container_sc("init", {"runAsUser": 0})]}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
}

test_input_run_as_root_with_host_users_true_not_allowed if {
	spec := {"hostUsers": true, "securityContext": {"runAsUser": 0}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	count(violations) == 1 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
}
