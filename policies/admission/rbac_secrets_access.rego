# METADATA
# title: RBAC access to Secrets
# description: Roles and ClusterRoles must not grant access to Secrets (any verb on secrets, or on every resource of the core group); a workload that needs one Secret names it in resourceNames.
# custom:
#   id: rbac_secrets_access
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: rbac
#   controls: ["cis-k8s:5.1.2", "nsa-cisa:authentication-authorization:rbac"]
package tribunal.admission.rbac_secrets_access

import rego.v1

# Trivy KSV041 (manage secrets). Reading a Secret is as good as holding it, and list and watch return
# every Secret's data, so every verb counts. A rule limited by resourceNames to named Secrets is
# allowed unless it grants list or watch (which resourceNames cannot limit), or every verb.
violations contains v if {
	some r in data.tribunal.lib.kubernetes.rbac_rules
	data.tribunal.lib.kubernetes.rule_covers_core_group(r)
	some resource in r.resources
	resource in {"secrets", "*"}
	count(r.verbs) > 0
	names := object.get(r.rule, "resourceNames", [])
	unlimited := [verb |
		some verb in r.verbs
		not limited_by_name(verb, names)
	]
	count(unlimited) > 0
	v := {
		"msg": concat("", [r.ref, " grants ", concat(", ", unlimited), " on ", resource]),
		"severity": "medium",
		"controls": ["cis-k8s:5.1.2", "nsa-cisa:authentication-authorization:rbac"],
		"details": {"path": concat(".", [r.path, "resources"]), "resource": resource, "verbs": unlimited},
	}
}

limited_by_name(verb, names) if {
	is_array(names)
	count(names) > 0
	not verb in {"list", "watch", "*"}
}
