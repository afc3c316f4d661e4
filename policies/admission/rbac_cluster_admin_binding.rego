# METADATA
# title: Bindings to cluster-admin
# description: RoleBindings and ClusterRoleBindings must not grant a role of data.tribunal.config.privileged_cluster_roles (default cluster-admin); the API server's bootstrap bindings (named system:*, or granting only the group system:masters) are left alone.
# custom:
#   id: rbac_cluster_admin_binding
#   version: 1.0.0
#   severity: high
#   enforcement: warn
#   profile: rbac
#   controls: ["cis-k8s:5.1.1", "nsa-cisa:authentication-authorization:rbac"]
package tribunal.admission.rbac_cluster_admin_binding

import rego.v1

# Trivy KSV111. A RoleBinding to cluster-admin grants it in one namespace: still every permission
# there, Secrets and RBAC included.
violations contains v if {
	obj := input.event.request.object
	obj.kind in {"RoleBinding", "ClusterRoleBinding"}
	obj.roleRef.kind == "ClusterRole"
	role := obj.roleRef.name
	privileged := data.tribunal.config.privileged_cluster_roles
	is_array(privileged)
	role in privileged
	name := data.tribunal.lib.kubernetes.object_name
	not startswith(name, "system:")
	subjects := [s |
		some subject in data.tribunal.lib.kubernetes.array_of(object.get(obj, "subjects", []))
		is_object(subject)
		s := concat("/", [data.tribunal.lib.kubernetes.string_of(object.get(subject, "kind", "")), data.tribunal.lib.kubernetes.string_of(object.get(subject, "name", ""))])
	]
	# The API server's own binding "cluster-admin" grants it to the group system:masters only.
	others := [other |
		some other in subjects
		other != "Group/system:masters"
	]
	count(others) > 0
	v := {
		"msg": concat("", [obj.kind, " ", name, " binds ClusterRole ", role, " to ", concat(", ", subjects)]),
		"severity": "high",
		"controls": ["cis-k8s:5.1.1", "nsa-cisa:authentication-authorization:rbac"],
		"details": {"path": "roleRef.name", "role": role, "subjects": subjects},
	}
}
