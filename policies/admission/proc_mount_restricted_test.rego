package tribunal.admission.proc_mount_restricted

import rego.v1

test_input_proc_mount_unmasked_in_user_namespace_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"procMount": "Unmasked"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"hostUsers": false, "containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx procMount is Unmasked (Restricted allows only Default, even with hostUsers: false)"
	v.controls == ["pss-restricted:proc-mount-type"]
	v.severity == "high"
	v.details.path == "spec.containers[0]"
}

test_input_proc_mount_unmasked_in_templates_and_every_container_list_not_allowed if {
	bad := data.tribunal.lib.kubernetes.mock_container_sc("x", {"procMount": "Unmasked"})
	spec := {"hostUsers": false, "containers": [bad], "initContainers": [object.union(bad, {"name": "i"})], "ephemeralContainers": [object.union(bad, {"name": "e"})]}
	count(violations) == 3 with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(violations) == 3 with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
}

# Outside a user namespace the Baseline policy (proc_mount) reports it: no second violation here.
test_input_proc_mount_unmasked_outside_user_namespace_left_to_baseline if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"procMount": "Unmasked"})
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod({"hostUsers": true, "containers": [ctr]})
}

test_input_proc_mount_default_in_user_namespace_allowed if {
	spec := {"hostUsers": false, "containers": [data.tribunal.lib.kubernetes.mock_container_sc("a", {"procMount": "Default"}), data.tribunal.lib.kubernetes.mock_good_container("b")]}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
}
