# METADATA
# title: RBAC wildcards
# description: Roles and ClusterRoles must not use the wildcard "*" in verbs, resources (or a "*" subresource), apiGroups or nonResourceURLs; a wildcard grants what exists now and everything added later.
# custom:
#   id: rbac_wildcards
#   version: 1.0.0
#   severity: high
#   enforcement: warn
#   profile: rbac
#   controls: ["cis-k8s:5.1.3", "nsa-cisa:authentication-authorization:rbac"]
package tribunal.admission.rbac_wildcards

import rego.v1

# Trivy KSV044 (any verb on any resource), KSV045 (any verb on named resources) and KSV046 (any
# resource): one violation per rule and list that holds a wildcard.
violations contains v if {
	some r in data.tribunal.lib.kubernetes.rbac_rules
	some list in [["verbs", r.verbs], ["resources", r.resources], ["apiGroups", r.api_groups], ["nonResourceURLs", r.non_resource_urls]]
	wild := [x |
		some x in list[1]
		contains(x, "*")
	]
	count(wild) > 0
	v := {
		"msg": concat("", [r.ref, " grants ", list[0], " ", concat(", ", wild)]),
		"severity": "high",
		"controls": ["cis-k8s:5.1.3", "nsa-cisa:authentication-authorization:rbac"],
		"details": {"path": concat(".", [r.path, list[0]]), "field": list[0], "values": wild},
	}
}
