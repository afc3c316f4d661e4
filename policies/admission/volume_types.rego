# METADATA
# title: Volume types
# description: Pods may only use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes (PSS restricted).
# custom:
#   id: volume_types
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: pss-restricted
#   controls: ["pss-restricted:volume-types", "nsa-cisa:pod-security:host-filesystem"]
package tribunal.admission.volume_types

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-restricted:volume-types", "nsa-cisa:pod-security:host-filesystem"]

allowed_types := {
	"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
	"persistentVolumeClaim", "projected", "secret",
}

violations contains v if {
	some vol in k8s.volumes
	some vtype, source in vol.volume
	vtype != "name"
	source != null
	not allowed_types[vtype]
	msg := concat("", ["volume ", vol.name, " uses type ", vtype])
	v := data.tribunal.lib.kubernetes.violation(msg, "medium", controls, {"path": vol.path, "volume": vol.name, "type": vtype})
}
