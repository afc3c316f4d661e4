package tribunal.admission.rbac_wildcards

import rego.v1

role(kind, rules) := data.tribunal.lib.kubernetes.mock_input({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "ops"}, "rules": rules})

test_input_cluster_role_any_verb_any_resource_not_allowed if {
	results := violations with input as role("ClusterRole", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
	{v.msg | some v in results} == {"ClusterRole ops rules[0] grants verbs *", "ClusterRole ops rules[0] grants resources *", "ClusterRole ops rules[0] grants apiGroups *"}
	some v in results
	v.controls == ["cis-k8s:5.1.3", "nsa-cisa:authentication-authorization:rbac"]
}

test_input_role_wildcard_verb_and_subresource_not_allowed if {
	rules := [
		{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
		{"apiGroups": ["apps"], "resources": ["deployments/*"], "verbs": ["*"]},
	]
	results := violations with input as role("Role", rules)
	{v.details.path | some v in results} == {"rules[1].verbs", "rules[1].resources"}
}

test_input_non_resource_url_wildcard_not_allowed if {
	results := violations with input as role("ClusterRole", [{"nonResourceURLs": ["*"], "verbs": ["get"]}])
	count(results) == 1
}

test_input_named_verbs_and_resources_allowed if {
	rules := [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments", "pods/log"], "verbs": ["get", "list", "watch"]}]
	results := violations with input as role("ClusterRole", rules)
	count(results) == 0
}

test_input_odd_rules_allowed if {
	results := violations with input as role("Role", [null, {"verbs": null, "resources": "*", "apiGroups": [1]}])
	count(results) == 0
	aggregated := violations with input as role("ClusterRole", null)
	count(aggregated) == 0
}
