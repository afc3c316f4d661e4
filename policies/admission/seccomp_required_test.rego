package tribunal.admission.seccomp_required

import rego.v1

test_input_seccomp_unset_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("server", {"seccompProfile": null})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/server seccomp profile is not RuntimeDefault/Localhost (unset)"
	v.details.path == "spec.template.spec.containers[0]"
}

test_input_container_unconfined_overrides_pod_not_allowed if {
	spec := {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [data.tribunal.lib.kubernetes.mock_container_sc("a", {"seccompProfile": null}), data.tribunal.lib.kubernetes.mock_container_sc("b", {"seccompProfile": {"type": "Unconfined"}})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 1
	some v in results
	v.details.container == "b"
}

test_input_pod_level_runtime_default_allowed if {
	spec := {
		"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [data.tribunal.lib.kubernetes.mock_container_sc("a", {"seccompProfile": null})],
		"initContainers": [data.tribunal.lib.kubernetes.mock_container_sc("i", {"seccompProfile": null})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}

test_input_every_container_localhost_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("a", {"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob({"containers": [ctr]})
	count(results) == 0
}
