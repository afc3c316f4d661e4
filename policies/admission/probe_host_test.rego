package tribunal.admission.probe_host

import rego.v1

good := data.tribunal.lib.kubernetes.mock_good_container("app")

test_input_liveness_probe_http_host_not_allowed if {
	ctr := object.union(good, {"livenessProbe": {"httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/app livenessProbe.httpGet.host is 169.254.169.254 (must be unset or empty)"
	v.controls == ["pss-baseline:host-probes-lifecycle-hooks"]
	v.details == {"container": "app", "image": "registry.example.com/app:1.0.0", "path": "spec.containers[0]", "field": "livenessProbe.httpGet.host", "host": "169.254.169.254"}
}

test_input_every_probe_and_lifecycle_host_not_allowed if {
	ctr := object.union(good, {
		"livenessProbe": {"tcpSocket": {"host": "a", "port": 1}},
		"readinessProbe": {"httpGet": {"host": "b", "port": 1}},
		"startupProbe": {"tcpSocket": {"host": "c", "port": 1}},
		"lifecycle": {"postStart": {"httpGet": {"host": "d", "port": 1}}, "preStop": {"tcpSocket": {"host": "e", "port": 1}}},
	})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	{v.details.field | some v in results} == {
		"livenessProbe.tcpSocket.host", "readinessProbe.httpGet.host", "startupProbe.tcpSocket.host",
		"lifecycle.postStart.httpGet.host", "lifecycle.preStop.tcpSocket.host",
	}
}

test_input_probe_host_in_templates_init_and_ephemeral_containers_not_allowed if {
	probe := {"readinessProbe": {"httpGet": {"host": "10.0.0.1", "port": 8080}}}
	spec := {
		"containers": [good],
		"initContainers": [object.union(data.tribunal.lib.kubernetes.mock_good_container("sidecar"), probe)],
		"ephemeralContainers": [object.union(data.tribunal.lib.kubernetes.mock_good_container("debug"), {"lifecycle": {"preStop": {"httpGet": {"host": "x", "port": 1}}}})],
	}
	deployment := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	{v.msg | some v in deployment} == {
		"initContainers/sidecar readinessProbe.httpGet.host is 10.0.0.1 (must be unset or empty)",
		"ephemeralContainers/debug lifecycle.preStop.httpGet.host is x (must be unset or empty)",
	}
	cronjob := violations with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
	{v.details.path | some v in cronjob} == {"spec.jobTemplate.spec.template.spec.initContainers[0]", "spec.jobTemplate.spec.template.spec.ephemeralContainers[0]"}
}

test_input_probes_without_host_or_with_empty_host_allowed if {
	ctr := object.union(good, {
		"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
		"readinessProbe": {"tcpSocket": {"host": "", "port": 8080}},
		"startupProbe": {"exec": {"command": ["true"]}},
		"lifecycle": {"preStop": {"httpGet": {"host": null, "port": 8080}}, "postStart": {"exec": {"command": ["true"]}}},
	})
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
}

test_input_odd_probe_shapes_tolerated if {
	ctr := object.union(good, {"livenessProbe": null, "readinessProbe": {"httpGet": null}, "lifecycle": "x"})
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
}
