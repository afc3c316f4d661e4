package tribunal.admission.privilege_escalation

import rego.v1

test_input_privilege_escalation_unset_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"allowPrivilegeEscalation": null})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx allowPrivilegeEscalation is not false (unset)"
}

test_input_privilege_escalation_true_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"allowPrivilegeEscalation": true})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx allowPrivilegeEscalation is not false (true)"
}

test_input_init_and_ephemeral_containers_in_deployment_not_allowed if {
	spec := {
		"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")],
		"initContainers": [{"name": "init", "image": "busybox:1.36"}],
		"ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 2
	paths := {v.details.path | some v in results}
	paths == {"spec.template.spec.initContainers[0]", "spec.template.spec.ephemeralContainers[0]"}
}

test_input_privilege_escalation_false_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob({"containers": [data.tribunal.lib.kubernetes.mock_good_container("a"), data.tribunal.lib.kubernetes.mock_good_container("b")]})
	count(results) == 0
}

test_input_windows_pod_exempt if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"os": {"name": "windows"}, "containers": [{"name": "w", "image": "w:1"}]})
	count(results) == 0
}
