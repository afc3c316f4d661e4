package tribunal.admission.image_tag

import rego.v1

test_input_image_untagged_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("nginx"), {"image": "nginx"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx image 'nginx' is untagged (implicit latest)"
	v.details.image == "nginx"
}

test_input_image_latest_in_deployment_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("keda"), {"image": "ghcr.io/kedacore/keda:latest"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.details.tag == "latest"
}

test_input_registry_port_is_not_a_tag_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"image": "localhost:5000/app"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("a")], "ephemeralContainers": [ctr]})
	count(results) == 1
}

test_input_image_tagged_or_digest_allowed if {
	spec := {"containers": [
		object.union(data.tribunal.lib.kubernetes.mock_good_container("a"), {"image": "nginx:1.25.3"}),
		object.union(data.tribunal.lib.kubernetes.mock_good_container("b"), {"image": "busybox@sha256:0123456789abcdef"}),
		object.union(data.tribunal.lib.kubernetes.mock_good_container("c"), {"image": "busybox:latest@sha256:0123456789abcdef"}),
		object.union(data.tribunal.lib.kubernetes.mock_good_container("d"), {"image": "localhost:5000/app:v1"}),
	]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}
