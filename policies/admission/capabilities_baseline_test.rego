package tribunal.admission.capabilities_baseline

import rego.v1

test_input_capability_sys_admin_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("opa", {"capabilities": {"add": ["SYS_ADMIN"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/opa adds capability SYS_ADMIN"
	v.details.capability == "SYS_ADMIN"
}

test_input_capability_prefixed_name_not_allowed if {
	# Names are compared literally: CAP_NET_RAW is not in the baseline list.
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"capabilities": {"add": ["CAP_NET_RAW", "CHOWN"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.details.capability == "CAP_NET_RAW"
	v.details.path == "spec.template.spec.containers[0]"
}

test_input_ephemeral_container_capability_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("debug", {"capabilities": {"add": ["SYS_PTRACE"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "ephemeralContainers": [ctr]})
	count(results) == 1
}

test_input_baseline_capabilities_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN", "SETUID"], "drop": ["ALL"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 0
}

test_adding_net_raw_names_cis_5_2_8_and_other_capabilities_do_not if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"capabilities": {"add": ["NET_RAW", "SYS_ADMIN"]}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 2
	some raw in results
	raw.details.capability == "NET_RAW"
	"cis-k8s:5.2.8" in raw.controls
	some admin in results
	admin.details.capability == "SYS_ADMIN"
	not "cis-k8s:5.2.8" in admin.controls
	"cis-k8s:5.2.9" in admin.controls
}
