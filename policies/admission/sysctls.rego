# METADATA
# title: Unsafe sysctls
# description: Pods may only set sysctls from the PSS safe set as of Kubernetes 1.35 (net.ipv4.tcp_rmem and tcp_wmem since 1.32) (PSS baseline).
# custom:
#   id: sysctls
#   version: 1.1.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:sysctls", "cis-k8s:5.7.3"]
package tribunal.admission.sysctls

import rego.v1

violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	sysctls := object.get(ps.spec, ["securityContext", "sysctls"], [])
	some i, sysctl in object.get({"array": sysctls}, type_name(sysctls), [])
	is_object(sysctl)
	name := object.get(sysctl, "name", "")
	not name in {
		"kernel.shm_rmid_forced",
		"net.ipv4.ip_local_port_range",
		"net.ipv4.ip_unprivileged_port_start",
		"net.ipv4.tcp_syncookies",
		"net.ipv4.ping_group_range",
		"net.ipv4.ip_local_reserved_ports",
		"net.ipv4.tcp_keepalive_time",
		"net.ipv4.tcp_fin_timeout",
		"net.ipv4.tcp_keepalive_intvl",
		"net.ipv4.tcp_keepalive_probes",
		"net.ipv4.tcp_rmem",
		"net.ipv4.tcp_wmem",
	}
	msg := concat("", ["pod sets unsafe sysctl ", data.tribunal.lib.kubernetes.text(name)])
	v := data.tribunal.lib.kubernetes.pod_violation(ps, concat("", ["securityContext.sysctls[", format_int(i, 10), "]"]), msg, "high", ["pss-baseline:sysctls", "cis-k8s:5.7.3"], {"sysctl": name})
}
