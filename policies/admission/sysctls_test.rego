package tribunal.admission.sysctls

import rego.v1

test_input_unsafe_sysctls_not_allowed if {
	sysctls := [{"name": "kernel.msgmax", "value": "65536"}, {"name": "net.core.somaxconn", "value": "1024"}]
	spec := {"securityContext": {"sysctls": sysctls}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 2
	some v in results
	v.msg == "pod sets unsafe sysctl kernel.msgmax"
	v.details.path == "spec.securityContext.sysctls[0]"
}

test_input_unsafe_sysctl_in_deployment_not_allowed if {
	spec := {"securityContext": {"sysctls": [{"name": "vm.swappiness", "value": "1"}]}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
	count(results) == 1
}

test_input_safe_sysctls_allowed if {
	sysctls := [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}, {"name": "kernel.shm_rmid_forced", "value": "1"}]
	spec := {"securityContext": {"sysctls": sysctls}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(results) == 0
}

# Kubernetes 1.32 added net.ipv4.tcp_rmem and net.ipv4.tcp_wmem to the safe set; their neighbours stay unsafe.
test_input_tcp_buffer_sysctls_allowed if {
	sysctls := [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 16777216"}, {"name": "net.ipv4.tcp_wmem", "value": "4096 65536 16777216"}]
	spec := {"securityContext": {"sysctls": sysctls}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_deployment(spec)
}

test_input_tcp_mem_and_core_buffer_sysctls_not_allowed if {
	sysctls := [{"name": "net.ipv4.tcp_mem", "value": "1 2 3"}, {"name": "net.core.rmem_max", "value": "16777216"}, {"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"}]
	spec := {"securityContext": {"sysctls": sysctls}, "containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod(spec)
	{v.details.sysctl | some v in results} == {"net.ipv4.tcp_mem", "net.core.rmem_max", "net.ipv4.tcp_slow_start_after_idle"}
}
