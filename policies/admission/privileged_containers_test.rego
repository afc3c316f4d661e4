package tribunal.admission.privileged_containers

import rego.v1

test_input_container_privileged_not_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"privileged": true})]})
	count(results) == 1
	some v in results
	v.msg == "containers/nginx is privileged"
	v.severity == "high"
	v.details == {"container": "nginx", "image": "registry.example.com/app:1.0.0", "path": "spec.containers[0]", "field": "securityContext.privileged"}
	"cis-k8s:5.2.2" in v.controls
}

test_input_init_container_privileged_in_deployment_not_allowed if {
	spec := {
		"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")],
		"initContainers": [data.tribunal.lib.kubernetes.mock_container_sc("init", {"privileged": true})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.msg == "initContainers/init is privileged"
	v.details.path == "spec.template.spec.initContainers[0]"
}

test_input_ephemeral_container_privileged_in_cronjob_not_allowed if {
	spec := {
		"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")],
		"ephemeralContainers": [data.tribunal.lib.kubernetes.mock_container_sc("debug", {"privileged": true})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
	count(results) == 1
	some v in results
	v.details.path == "spec.jobTemplate.spec.template.spec.ephemeralContainers[0]"
}

test_input_container_not_privileged_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"privileged": false})]})
	count(results) == 0
}

test_input_non_workload_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_input({"kind": "Service", "spec": {"containers": [{"name": "x", "securityContext": {"privileged": true}}]}})
	count(results) == 0
}

test_input_delete_without_object_allowed if {
	results := violations with input as {"kind": "admission", "event": {"request": {"operation": "DELETE", "object": null}}, "subject": {}, "context": {}}
	count(results) == 0
}
