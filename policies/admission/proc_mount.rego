# METADATA
# title: /proc mount type
# description: Containers must use the Default /proc mount type, unless the pod runs in a user namespace (hostUsers false; PSS baseline since Kubernetes 1.35).
# custom:
#   id: proc_mount
#   version: 1.1.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:proc-mount-type", "cis-k8s:5.7.3"]
package tribunal.admission.proc_mount

import rego.v1

# A pod with `hostUsers: false` runs in a user namespace: Baseline allows any procMount there since
# Kubernetes 1.35 (Restricted still does not: proc_mount_restricted).
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	mount := object.get(c.container, ["securityContext", "procMount"], "Default")
	mount != "Default"
	mount != null
	object.get(c.pod.spec, "hostUsers", true) != false
	v := {
		"msg": concat("", [c.ref, " procMount is ", data.tribunal.lib.kubernetes.text(mount)]),
		"severity": "high",
		"controls": ["pss-baseline:proc-mount-type", "cis-k8s:5.7.3"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "proc_mount": mount},
	}
}
