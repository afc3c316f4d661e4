package tribunal.admission.probes

import rego.v1

http_probe := {"httpGet": {"path": "/healthz", "port": 8080}}

test_input_container_without_probes_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"readinessProbe": http_probe})
	sidecar := object.union(data.tribunal.lib.kubernetes.mock_good_container("proxy"), {"restartPolicy": "Always", "livenessProbe": http_probe})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr], "initContainers": [sidecar]})
	{v.msg | some v in results} == {"containers/app has no livenessProbe", "initContainers/proxy (a sidecar) has no readinessProbe"}
	some v in results
	v.controls == ["hygiene:probes"]
}

test_input_probes_set_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"readinessProbe": http_probe, "livenessProbe": http_probe})
	init := data.tribunal.lib.kubernetes.mock_good_container("migrate")
	debug := {"name": "debug", "image": "busybox:1.36"}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr], "initContainers": [init], "ephemeralContainers": [debug]})
	count(results) == 0
}
