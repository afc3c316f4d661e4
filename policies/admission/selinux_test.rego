package tribunal.admission.selinux

import rego.v1

test_input_selinux_type_user_role_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("nginx", {"seLinuxOptions": {"type": "svirt_lxc_net_t", "user": "sysadm_u", "role": "sysadm_r"}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 3
	msgs := {v.msg | some v in results}
	"containers/nginx seLinuxOptions type svirt_lxc_net_t is not allowed" in msgs
	"containers/nginx seLinuxOptions sets user sysadm_u" in msgs
	"containers/nginx seLinuxOptions sets role sysadm_r" in msgs
}

test_input_pod_selinux_type_in_deployment_not_allowed if {
	spec := {"securityContext": {"seLinuxOptions": {"type": "spc_t"}}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
	some v in results
	v.details.path == "spec.template.spec.securityContext.seLinuxOptions.type"
}

test_input_selinux_container_types_allowed if {
	spec := {
		"securityContext": {"seLinuxOptions": {"level": "s0:c123,c456"}},
		"containers": [data.tribunal.lib.kubernetes.mock_container_sc("a", {"seLinuxOptions": {"type": "container_t"}})],
		"initContainers": [data.tribunal.lib.kubernetes.mock_container_sc("b", {"seLinuxOptions": {"type": "container_init_t"}})],
	}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}

# Kubernetes 1.31 added container_engine_t to the allowed types.
test_input_selinux_container_engine_type_allowed if {
	spec := {
		"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}},
		"containers": [data.tribunal.lib.kubernetes.mock_container_sc("a", {"seLinuxOptions": {"type": "container_engine_t"}})],
	}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_cronjob(spec)
}

test_input_selinux_engine_type_with_user_not_allowed if {
	ctr := data.tribunal.lib.kubernetes.mock_container_sc("a", {"seLinuxOptions": {"type": "container_engine_t", "user": "system_u"}})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	{v.msg | some v in results} == {"containers/a seLinuxOptions sets user system_u"}
}
