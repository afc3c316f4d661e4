package tribunal.admission.volume_types

import rego.v1

test_input_host_path_volume_type_not_allowed if {
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 1
	some v in results
	v.msg == "volume h uses type hostPath"
}

test_input_nfs_volume_in_deployment_not_allowed if {
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": [{"name": "n", "nfs": {"server": "x", "path": "/"}}, {"name": "s", "secret": {"secretName": "s"}}]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.details.path == "spec.template.spec.volumes[0]"
}

test_input_restricted_volume_types_allowed if {
	volumes := [
		{"name": "a", "configMap": {"name": "c"}},
		{"name": "b", "secret": {"secretName": "s"}},
		{"name": "c", "emptyDir": {}},
		{"name": "d", "projected": {"sources": []}},
		{"name": "e", "persistentVolumeClaim": {"claimName": "p"}},
		{"name": "f", "downwardAPI": {"items": []}},
		{"name": "g", "csi": {"driver": "d"}},
		{"name": "h", "ephemeral": {"volumeClaimTemplate": {}}},
	]
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": volumes})
	count(results) == 0
}

# Kubernetes 1.33 allows image volumes under Restricted.
test_input_image_volume_allowed if {
	volumes := [{"name": "model", "image": {"reference": "registry.example.com/models/llm:1", "pullPolicy": "IfNotPresent"}}]
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": volumes}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
}

test_input_image_volume_beside_nfs_reports_only_nfs if {
	volumes := [{"name": "model", "image": {"reference": "r/m:1"}}, {"name": "share", "nfs": {"server": "s", "path": "/"}}]
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": volumes})
	{v.details.type | some v in results} == {"nfs"}
}
