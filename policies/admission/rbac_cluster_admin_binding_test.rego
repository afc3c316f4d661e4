package tribunal.admission.rbac_cluster_admin_binding

import rego.v1

binding(kind, name, role, subjects) := data.tribunal.lib.kubernetes.mock_input({
	"apiVersion": "rbac.authorization.k8s.io/v1",
	"kind": kind,
	"metadata": {"name": name},
	"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
	"subjects": subjects,
})

ci := [{"kind": "ServiceAccount", "name": "ci", "namespace": "build"}, {"kind": "Group", "name": "devs"}]

test_input_cluster_role_binding_to_cluster_admin_not_allowed if {
	results := violations with input as binding("ClusterRoleBinding", "ci-admin", "cluster-admin", ci) with data.tribunal.config.privileged_cluster_roles as ["cluster-admin"]
	count(results) == 1
	some v in results
	v.msg == "ClusterRoleBinding ci-admin binds ClusterRole cluster-admin to ServiceAccount/ci, Group/devs"
	v.controls == ["cis-k8s:5.1.1", "nsa-cisa:authentication-authorization:rbac"]
}

test_input_role_binding_to_configured_role_not_allowed if {
	results := violations with input as binding("RoleBinding", "editors", "edit", ci) with data.tribunal.config.privileged_cluster_roles as ["cluster-admin", "admin", "edit"]
	count(results) == 1
}

test_input_binding_to_view_allowed if {
	results := violations with input as binding("ClusterRoleBinding", "viewers", "view", ci) with data.tribunal.config.privileged_cluster_roles as ["cluster-admin"]
	count(results) == 0
}

test_input_bootstrap_bindings_allowed if {
	results := violations with input as binding("ClusterRoleBinding", "cluster-admin", "cluster-admin", [{"kind": "Group", "name": "system:masters"}]) with data.tribunal.config.privileged_cluster_roles as ["cluster-admin"]
	count(results) == 0
	widened := violations with input as binding("ClusterRoleBinding", "cluster-admin", "cluster-admin", [{"kind": "Group", "name": "system:masters"}, {"kind": "User", "name": "alice"}]) with data.tribunal.config.privileged_cluster_roles as ["cluster-admin"]
	{v.msg | some v in widened} == {"ClusterRoleBinding cluster-admin binds ClusterRole cluster-admin to Group/system:masters, User/alice"}
	bootstrap := violations with input as binding("ClusterRoleBinding", "system:kube-controller-manager", "cluster-admin", ci) with data.tribunal.config.privileged_cluster_roles as ["cluster-admin"]
	count(bootstrap) == 0
}
