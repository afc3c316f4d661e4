package tribunal.admission.rbac_secrets_access

import rego.v1

role(kind, rules) := data.tribunal.lib.kubernetes.mock_input({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "reader"}, "rules": rules})

test_input_cluster_role_reading_secrets_not_allowed if {
	results := violations with input as role("ClusterRole", [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list", "watch"]}])
	count(results) == 1
	some v in results
	v.msg == "ClusterRole reader rules[0] grants get, list, watch on secrets"
	v.controls == ["cis-k8s:5.1.2", "nsa-cisa:authentication-authorization:rbac"]
}

test_input_role_all_core_resources_not_allowed if {
	results := violations with input as role("Role", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["create"]}])
	count(results) == 1
	some v in results
	v.details.resource == "*"
}

test_input_named_secret_listed_not_allowed if {
	results := violations with input as role("Role", [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tls"], "verbs": ["get", "list"]}])
	{v.msg | some v in results} == {"Role reader rules[0] grants list on secrets"}
}

test_input_named_secret_get_allowed if {
	results := violations with input as role("Role", [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tls"], "verbs": ["get"]}])
	count(results) == 0
}

test_input_other_resources_and_groups_allowed if {
	rules := [
		{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["*"]},
		{"apiGroups": ["example.com"], "resources": ["secrets"], "verbs": ["get"]},
	]
	results := violations with input as role("ClusterRole", rules)
	count(results) == 0
}
