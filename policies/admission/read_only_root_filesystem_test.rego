package tribunal.admission.read_only_root_filesystem

import rego.v1

test_input_container_writable_root_fs_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"readOnlyRootFilesystem": false})
	init := data.tribunal.lib.kubernetes.mock_good_container("init")
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr], "initContainers": [init]})
	count(results) == 2
	msgs := {v.msg | some v in results}
	msgs == {"containers/nginx does not set readOnlyRootFilesystem: true", "initContainers/init does not set readOnlyRootFilesystem: true"}
	some v in results
	v.controls == ["nsa-cisa:pod-security:immutable-fs"]
}

test_input_security_context_null_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"securityContext": null})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
}

test_input_read_only_root_fs_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("app", {"readOnlyRootFilesystem": true})
	debug := {"name": "debug", "image": "busybox:1.36"}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr], "ephemeralContainers": [debug]})
	count(results) == 0
}
