package tribunal.admission.rbac_escalation_verbs

import rego.v1

role(kind, rules) := data.tribunal.lib.kubernetes.mock_input({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "granter"}, "rules": rules})

test_input_cluster_role_bind_escalate_not_allowed if {
	rules := [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "roles"], "verbs": ["get", "bind", "escalate"]}]
	results := violations with input as role("ClusterRole", rules)
	count(results) == 1
	some v in results
	v.msg == "ClusterRole granter rules[0] grants bind, escalate on clusterroles, roles"
	v.controls == ["cis-k8s:5.1.8", "nsa-cisa:authentication-authorization:rbac"]
}

test_input_role_impersonate_not_allowed if {
	rules := [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]
	results := violations with input as role("Role", rules)
	count(results) == 1
	some v in results
	v.details.path == "rules[0].verbs"
}

test_input_ordinary_verbs_allowed if {
	rules := [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["get", "list"]}]
	results := violations with input as role("ClusterRole", rules)
	count(results) == 0
}
