package tribunal.admission.service_account_token

import rego.v1

test_input_pod_automount_unset_not_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	count(results) == 1
	some v in results
	v.msg == "pod spec does not set automountServiceAccountToken: false"
	v.details.path == "spec.automountServiceAccountToken"
	v.controls == ["cis-k8s:5.1.6", "nsa-cisa:pod-security:service-account-tokens"]
}

test_input_deployment_automount_true_not_allowed if {
	spec := {"automountServiceAccountToken": true, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.msg == "pod spec sets automountServiceAccountToken: true"
	v.details.path == "spec.template.spec.automountServiceAccountToken"
}

test_input_pod_automount_false_allowed if {
	spec := {"automountServiceAccountToken": false, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
	count(results) == 0
}

test_input_service_account_automount_unset_not_allowed if {
	sa := {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}}
	results := violations with input as data.tribunal.lib.kubernetes.mock_input(sa)
	count(results) == 1
	some v in results
	v.msg == "ServiceAccount builder does not set automountServiceAccountToken: false"
}

test_input_service_account_automount_false_allowed if {
	sa := {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}, "automountServiceAccountToken": false}
	results := violations with input as data.tribunal.lib.kubernetes.mock_input(sa)
	count(results) == 0
}
