package tribunal.admission.capabilities_restricted

import rego.v1

test_input_capabilities_drop_all_missing_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"capabilities": null})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx capabilities.drop does not include ALL"
}

test_input_capability_added_beyond_net_bind_service_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_TIME"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.details.capability == "SYS_TIME"
}

test_input_drop_lowercase_all_only_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"capabilities": {"drop": ["all"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("a")], "ephemeralContainers": [ctr]})
	count(results) == 1
}

test_input_drop_all_add_net_bind_service_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 0
}
