# METADATA
# title: /proc mount type
# description: Containers must use the Default /proc mount type (PSS baseline).
# custom:
#   id: proc_mount
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:proc-mount-type", "cis-k8s:5.7.3"]
package tribunal.admission.proc_mount

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:proc-mount-type", "cis-k8s:5.7.3"]

violations contains v if {
	some c in k8s.containers
	mount := object.get(c.sc, "procMount", "Default")
	mount != null
	mount != "Default"
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " procMount is ", data.tribunal.lib.kubernetes.text(mount)])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"proc_mount": mount})
}
