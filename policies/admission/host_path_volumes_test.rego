package tribunal.admission.host_path_volumes

import rego.v1

test_input_host_path_volume_not_allowed if {
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": [{"name": "cache", "hostPath": {"path": "/tmp"}}]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 1
	some v in results
	v.msg == "volume cache is a hostPath volume (/tmp)"
	v.details.path == "spec.volumes[0]"
}

test_input_host_path_volume_in_cronjob_not_allowed if {
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": [{"name": "e", "emptyDir": {}}, {"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
	count(results) == 1
	some v in results
	v.details.path == "spec.jobTemplate.spec.template.spec.volumes[1]"
}

test_input_empty_dir_volume_allowed if {
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "volumes": [{"name": "cache", "emptyDir": {}}]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 0
}
