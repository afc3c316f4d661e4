package tribunal.admission.seccomp_unconfined

import rego.v1

test_input_pod_seccomp_unconfined_not_allowed if {
	spec := {"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"seccompProfile": null})]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 1
	some v in results
	v.details.path == "spec.securityContext.seccompProfile.type"
}

test_input_container_seccomp_unconfined_in_deployment_not_allowed if {
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_container_sc("app", {"seccompProfile": {"type": "Unconfined"}})]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.msg == "containers/app seccompProfile type is Unconfined"
}

test_input_legacy_seccomp_annotations_unconfined_not_allowed if {
	annotations := {
		"seccomp.security.alpha.kubernetes.io/pod": "unconfined",
		"container.seccomp.security.alpha.kubernetes.io/app": "unconfined",
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod_annotated(annotations, {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	count(results) == 2
}

test_input_seccomp_runtime_default_allowed if {
	annotations := {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}
	spec := {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod_annotated(annotations, spec)
	count(results) == 0
}
