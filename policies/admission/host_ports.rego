# METADATA
# title: Host ports
# description: Containers must not bind host ports (PSS baseline).
# custom:
#   id: host_ports
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:host-ports", "cis-k8s:5.2.13"]
package tribunal.admission.host_ports

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:host-ports", "cis-k8s:5.2.13"]

violations contains v if {
	some c in k8s.containers
	some i, port in data.tribunal.lib.kubernetes.array_of(object.get(c.container, "ports", []))
	host_port := object.get(data.tribunal.lib.kubernetes.object_of(port), "hostPort", 0)
	host_port != null
	host_port != 0
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " uses hostPort ", data.tribunal.lib.kubernetes.text(host_port)])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"host_port": host_port, "port_path": concat("", [c.path, ".ports[", format_int(i, 10), "]"])})
}
