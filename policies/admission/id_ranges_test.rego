package tribunal.admission.id_ranges

import rego.v1

ranges := {
	"runAsUser": {"min": 10001, "max": 2147483647},
	"runAsGroup": {"min": 10001, "max": 2147483647},
	"fsGroup": {"min": 10001, "max": 2147483647},
	"supplementalGroups": {"min": 10001, "max": 2147483647},
}

test_input_low_ids_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"runAsUser": 1000, "runAsGroup": 65534})
	spec := {"securityContext": {"runAsGroup": 100, "fsGroup": 2000, "supplementalGroups": [0, 5000, 20000]}, "containers": [ctr]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec) with data.tribunal.config.id_ranges as ranges
	msgs := {v.msg | some v in results}
	msgs == {
		"containers/app runAsUser 1000 is outside [10001, 2147483647]",
		"pod runAsGroup 100 is outside [10001, 2147483647]",
		"pod fsGroup 2000 is outside [10001, 2147483647]",
		"pod supplementalGroups 5000 is outside [10001, 2147483647]",
	}
	some v in results
	v.controls == ["cis-k8s:5.7.3"]
}

test_input_configured_range_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"runAsUser": 70000})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr]}) with data.tribunal.config.id_ranges as {"runAsUser": {"min": 1000, "max": 65535}}
	count(results) == 1
	some v in results
	v.details.max == 65535
	v.details.path == "spec.template.spec.containers[0]"
}

test_input_unset_ids_required_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"runAsUser": 20000})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]}) with data.tribunal.config.id_ranges as ranges with data.tribunal.config.id_ranges_required as true
	{v.msg | some v in results} == {"containers/app sets no runAsGroup (nor does its pod)"}
}

test_input_ids_in_range_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"runAsUser": 65532, "runAsGroup": 65532})
	spec := {"securityContext": {"runAsUser": 0, "fsGroup": 65534, "supplementalGroups": [0, 65534]}, "containers": [ctr]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec) with data.tribunal.config.id_ranges as ranges with data.tribunal.config.id_ranges_required as true
	count(results) == 0
}

test_input_unset_ids_not_required_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}) with data.tribunal.config.id_ranges as ranges with data.tribunal.config.id_ranges_required as false
	count(results) == 0
}
