package tribunal.admission.image_digest

import rego.v1

test_input_image_by_tag_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_good_container("app")
	init := object.union(data.tribunal.lib.kubernetes.mock_good_container("init"), {"image": "busybox@"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr], "initContainers": [init]})
	{v.msg | some v in results} == {"containers/app image 'registry.example.com/app:1.0.0' is not pinned by digest", "initContainers/init image 'busybox@' is not pinned by digest"}
	some v in results
	v.controls == ["nsa-cisa:supply-chain:image-pinning"]
}

test_input_image_by_digest_allowed if {
	digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"image": concat("", ["registry.example.com/app:1.0.0@", digest])})
	bare := object.union(data.tribunal.lib.kubernetes.mock_good_container("side"), {"image": concat("", ["nginx@", digest])})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr, bare]})
	count(results) == 0
}
