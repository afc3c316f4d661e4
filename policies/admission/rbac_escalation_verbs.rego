# METADATA
# title: RBAC escalate, bind and impersonate
# description: Roles and ClusterRoles must not grant the verbs escalate, bind or impersonate, with which a subject gives itself permissions it does not hold or acts as another user, group or ServiceAccount.
# custom:
#   id: rbac_escalation_verbs
#   version: 1.0.0
#   severity: high
#   enforcement: warn
#   profile: rbac
#   controls: ["cis-k8s:5.1.8", "nsa-cisa:authentication-authorization:rbac"]
package tribunal.admission.rbac_escalation_verbs

import rego.v1

# Trivy KSV043 (impersonate privileged groups), extended to every escalate, bind and impersonate. The
# verb "*" grants them too: rbac_wildcards reports it.
violations contains v if {
	some r in data.tribunal.lib.kubernetes.rbac_rules
	granted := [verb |
		some verb in r.verbs
		verb in {"escalate", "bind", "impersonate"}
	]
	count(granted) > 0
	v := {
		"msg": concat("", [r.ref, " grants ", concat(", ", granted), " on ", concat(", ", r.resources)]),
		"severity": "high",
		"controls": ["cis-k8s:5.1.8", "nsa-cisa:authentication-authorization:rbac"],
		"details": {"path": concat(".", [r.path, "verbs"]), "verbs": granted, "resources": r.resources},
	}
}
