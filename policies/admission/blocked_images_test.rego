package tribunal.admission.blocked_images

import rego.v1

blocked_nginx := {"sha256:aaaa": {
	"image": "nginx:1.27",
	"reference": "docker.io/library/nginx:1.27",
	"digest": "sha256:aaaa",
	"reason": "CVE-2024-0001 (critical) fixable",
	"blocked_at": "2024-05-01T10:00:00+00:00",
}}

pod_with(image) := data.tribunal.lib.kubernetes.mock_pod({"containers": [object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"image": image})]})

test_input_blocked_image_by_tag_not_allowed if {
	results := violations with input as pod_with("nginx:1.27") with data.tribunal.state.images as blocked_nginx
	count(results) == 1
	some v in results
	v.details.blocked == "docker.io/library/nginx:1.27"
	v.severity == "critical"
}

test_input_blocked_image_fully_qualified_not_allowed if {
	results := violations with input as pod_with("docker.io/library/nginx:1.27") with data.tribunal.state.images as blocked_nginx
	count(results) == 1
}

test_input_blocked_digest_not_allowed if {
	results := violations with input as pod_with("registry.example.com/mirror/nginx@sha256:aaaa") with data.tribunal.state.images as blocked_nginx
	count(results) == 1
}

test_input_blocked_by_tag_and_digest_yields_one_violation if {
	results := violations with input as pod_with("nginx:1.27@sha256:aaaa") with data.tribunal.state.images as blocked_nginx
	count(results) == 1
}

test_input_other_tag_allowed if {
	results := violations with input as pod_with("nginx:1.28") with data.tribunal.state.images as blocked_nginx
	count(results) == 0
}

test_input_nothing_blocked_allowed if {
	results := violations with input as pod_with("nginx:1.27") with data.tribunal.state.images as {}
	count(results) == 0
}

test_input_no_state_allowed if {
	results := violations with input as pod_with("nginx:1.27")
	count(results) == 0
}
