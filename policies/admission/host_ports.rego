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

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	ports := object.get(c.container, "ports", [])
	some i, port in object.get({"array": ports}, type_name(ports), [])
	host_port := object.get({"p": port}, ["p", "hostPort"], 0)
	host_port != null
	host_port != 0
	port_path := concat("", [c.path, ".ports[", format_int(i, 10), "]"])
	v := {
		"msg": concat("", [c.ref, " uses hostPort ", data.tribunal.lib.kubernetes.text(host_port)]),
		"severity": "high",
		"controls": ["pss-baseline:host-ports", "cis-k8s:5.2.13"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "host_port": host_port, "port_path": port_path},
	}
}
