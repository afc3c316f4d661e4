package tribunal.admission.trusted_registries

import rego.v1

test_input_empty_trusted_list_allows_every_registry if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("nginx"), {"image": "evil.example.com/miner:1"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
		with data.tribunal.config.trusted_registries as []
	count(results) == 0
}

test_input_untrusted_registry_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("nginx"), {"image": "nginx:1.25"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
		with data.tribunal.config.trusted_registries as ["ghcr.io/myorg/"]
	count(results) == 1
	some v in results
	v.details.reference == "docker.io/library/nginx:1.25"
	v.details.registry == "docker.io"
}

test_input_untrusted_init_container_in_deployment_not_allowed if {
	spec := {
		"containers": [object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"image": "ghcr.io/myorg/app:1"})],
		"initContainers": [object.union(data.tribunal.lib.kubernetes.mock_good_container("init"), {"image": "ghcr.io/other/tool:1"})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
		with data.tribunal.config.trusted_registries as ["ghcr.io/myorg/"]
	count(results) == 1
	some v in results
	v.details.container == "init"
}

test_input_trusted_registries_allowed if {
	spec := {"containers": [
		object.union(data.tribunal.lib.kubernetes.mock_good_container("a"), {"image": "ghcr.io/myorg/app:1"}),
		object.union(data.tribunal.lib.kubernetes.mock_good_container("b"), {"image": "nginx:1.25"}),
		object.union(data.tribunal.lib.kubernetes.mock_good_container("c"), {"image": "quay.io/prometheus/node-exporter@sha256:abc"}),
	]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
		with data.tribunal.config.trusted_registries as ["ghcr.io/myorg/", "docker.io/library/", "quay.io"]
	count(results) == 0
}

test_input_registry_prefix_is_not_a_substring_match if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("a"), {"image": "quay.io.evil.com/x:1"})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
		with data.tribunal.config.trusted_registries as ["quay.io"]
	count(results) == 1
}
