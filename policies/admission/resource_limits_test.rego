package tribunal.admission.resource_limits

import rego.v1

test_input_container_without_limits_not_allowed if {
	ctr := object.union(object.remove(data.tribunal.lib.kubernetes.mock_good_container("nginx"), ["resources"]), {"resources": {}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 2
	msgs := {v.msg | some v in results}
	msgs == {"containers/nginx has no cpu limit", "containers/nginx has no memory limit"}
}

test_input_init_container_without_memory_limit_in_deployment_not_allowed if {
	ctr := object.union(object.remove(data.tribunal.lib.kubernetes.mock_good_container("init"), ["resources"]), {"resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "initContainers": [ctr]})
	count(results) == 1
	some v in results
	v.details.field == "resources.limits.memory"
	v.details.path == "spec.template.spec.initContainers[0]"
}

test_input_ephemeral_container_exempt_allowed if {
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}

test_input_limits_set_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	count(results) == 0
}
