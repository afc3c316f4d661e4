package tribunal.admission.run_as_non_root

import rego.v1

test_input_run_as_non_root_unset_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"runAsNonRoot": null})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.details.container == "nginx"
}

test_input_container_overrides_pod_with_false_not_allowed if {
	spec := {
		"securityContext": {"runAsNonRoot": true},
		"containers": [data.tribunal.lib.kubernetes.mock_container_sc("a", {"runAsNonRoot": null}), data.tribunal.lib.kubernetes.mock_container_sc("b", {"runAsNonRoot": false})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.msg == "containers/b runAsNonRoot is not true (false)"
}

test_input_one_container_missing_not_allowed if {
	spec := {
		"containers": [data.tribunal.lib.kubernetes.mock_good_container("a")],
		"initContainers": [data.tribunal.lib.kubernetes.mock_container_sc("init", {"runAsNonRoot": null})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 1
}

test_input_pod_level_run_as_non_root_allowed if {
	spec := {"securityContext": {"runAsNonRoot": true}, "containers": [data.tribunal.lib.kubernetes.mock_container_sc("a", {"runAsNonRoot": null, "runAsUser": 1000})]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}

test_input_every_container_run_as_non_root_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [data.tribunal.lib.kubernetes.mock_good_container("a"), data.tribunal.lib.kubernetes.mock_good_container("b")]})
	count(results) == 0
}

# Kubernetes 1.35: a pod in a user namespace (hostUsers: false) is exempt, in templates too.
test_input_run_as_non_root_unset_with_host_users_false_allowed if {
	ctr := {"name": "app", "image": "app:1", "securityContext": {"runAsNonRoot": false}}
	spec := {"hostUsers": false, "containers": [ctr], "initContainers": [{"name": "init", "image": "i:1"}]}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
}

test_input_run_as_non_root_unset_with_host_users_true_not_allowed if {
	spec := {"hostUsers": true, "containers": [{"name": "app", "image": "app:1"}]}
	count(violations) == 1 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
}
