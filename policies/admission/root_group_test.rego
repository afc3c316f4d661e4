package tribunal.admission.root_group

import rego.v1

test_input_pod_root_groups_not_allowed if {
	spec := {"securityContext": {"runAsGroup": 0, "fsGroup": 0, "supplementalGroups": [1000, 0]}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	msgs := {v.msg | some v in results}
	msgs == {"pod runAsGroup is 0 (root group)", "pod fsGroup is 0 (root group)", "pod supplementalGroups include 0 (root group)"}
	paths := {v.details.path | some v in results}
	"spec.template.spec.securityContext.fsGroup" in paths
}

test_input_container_run_as_group_root_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"runAsUser": 1000, "runAsGroup": 0})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx runAsGroup is 0 (root group)"
	v.controls == ["nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"]
}

test_input_non_root_groups_allowed if {
	spec := {"securityContext": {"runAsGroup": 1000, "fsGroup": 2000, "supplementalGroups": [3000]}, "containers": [data.tribunal.lib.kubernetes.mock_container_sc("app", {"runAsGroup": 1000})]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}
