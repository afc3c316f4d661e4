package tribunal.admission.apparmor

import rego.v1

test_input_apparmor_annotation_unconfined_not_allowed if {
	annotations := {"container.apparmor.security.beta.kubernetes.io/nginx": "unconfined"}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod_annotated(annotations, {"containers": [data.tribunal.lib.kubernetes.mock_good_container("nginx")]})
	count(results) == 1
	some v in results
	v.details.container == "nginx"
	v.details.image == "registry.example.com/app:1.0.0"
	v.details.path == "metadata.annotations[container.apparmor.security.beta.kubernetes.io/nginx]"
}

test_input_apparmor_template_annotation_unconfined_not_allowed if {
	annotations := {"container.apparmor.security.beta.kubernetes.io/init": "unconfined"}
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "initContainers": [data.tribunal.lib.kubernetes.mock_good_container("init")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment_annotated(annotations, spec)
	count(results) == 1
	some v in results
	startswith(v.msg, "initContainers/init ")
	v.details.path == "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/init]"
}

test_input_apparmor_profile_unconfined_not_allowed if {
	spec := {
		"securityContext": {"appArmorProfile": {"type": "Unconfined"}},
		"containers": [data.tribunal.lib.kubernetes.mock_container_sc("app", {"appArmorProfile": {"type": "Unconfined"}})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 2
}

test_input_apparmor_confined_allowed if {
	annotations := {
		"container.apparmor.security.beta.kubernetes.io/a": "runtime/default",
		"container.apparmor.security.beta.kubernetes.io/b": "localhost/k8s-nginx",
	}
	spec := {
		"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
		"containers": [data.tribunal.lib.kubernetes.mock_good_container("a"), data.tribunal.lib.kubernetes.mock_container_sc("b", {"appArmorProfile": {"type": "Localhost", "localhostProfile": "x"}})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod_annotated(annotations, spec)
	count(results) == 0
}

# An empty annotation value sets no profile: Pod Security Admission allows it.
test_input_apparmor_empty_annotation_allowed if {
	annotations := {"container.apparmor.security.beta.kubernetes.io/a": ""}
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("a")]}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod_annotated(annotations, spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_deployment_annotated(annotations, spec)
}

test_input_apparmor_unconfined_annotation_beside_empty_one_not_allowed if {
	annotations := {"container.apparmor.security.beta.kubernetes.io/a": "", "container.apparmor.security.beta.kubernetes.io/b": "unconfined"}
	spec := {"containers": [data.tribunal.lib.kubernetes.mock_good_container("a"), data.tribunal.lib.kubernetes.mock_good_container("b")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod_annotated(annotations, spec)
	{v.details.container | some v in results} == {"b"}
}
