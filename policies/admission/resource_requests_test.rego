package tribunal.admission.resource_requests

import rego.v1

test_input_container_without_requests_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_good_container("nginx")
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	msgs := {v.msg | some v in results}
	msgs == {"containers/nginx has no cpu request", "containers/nginx has no memory request"}
	some v in results
	v.controls == ["nsa-cisa:pod-security:resource-limits"]
}

test_input_init_container_without_memory_request_in_cronjob_not_allowed if {
	good := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}})
	init := object.union(data.tribunal.lib.kubernetes.mock_good_container("init"), {"resources": {"requests": {"cpu": "10m", "memory": ""}}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob({"containers": [good], "initContainers": [init]})
	count(results) == 1
	some v in results
	v.details.field == "resources.requests.memory"
	v.details.path == "spec.jobTemplate.spec.template.spec.initContainers[0]"
}

test_input_requests_set_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}})
	debug := {"name": "debug", "image": "busybox:1.36"}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr], "ephemeralContainers": [debug]})
	count(results) == 0
}
