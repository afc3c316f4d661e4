package tribunal.admission.proc_mount

import rego.v1

test_input_proc_mount_unmasked_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"procMount": "Unmasked"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx procMount is Unmasked"
}

test_input_init_container_proc_mount_in_deployment_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("init", {"procMount": "Unmasked"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "initContainers": [ctr]})
	count(results) == 1
}

test_input_proc_mount_default_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"procMount": "Default"}), data.tribunal.lib.kubernetes.mock_good_container("b")]})
	count(results) == 0
}

# Kubernetes 1.35: Baseline allows any procMount in a user namespace (hostUsers: false), in a Pod, a
# workload template and a CronJob alike; hostUsers true or unset gets no relaxation.
test_input_proc_mount_unmasked_with_host_users_false_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"procMount": "Unmasked"})
	spec := {"hostUsers": false, "containers": [ctr], "initContainers": [data.tribunal.lib.kubernetes.mock_container_sc("init", {"procMount": "Unmasked"})]}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
}

test_input_proc_mount_unmasked_with_host_users_true_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"procMount": "Unmasked"})
	count(violations) == 1 with input as data.tribunal.lib.kubernetes.mock_pod({"hostUsers": true, "containers": [ctr]})
	count(violations) == 1 with input as data.tribunal.lib.kubernetes.mock_cronjob({"hostUsers": null, "containers": [ctr]})
}
