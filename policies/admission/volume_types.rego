# METADATA
# title: Volume types
# description: Pods may only use configMap, csi, downwardAPI, emptyDir, ephemeral, image (Kubernetes 1.33+), persistentVolumeClaim, projected and secret volumes (PSS restricted).
# custom:
#   id: volume_types
#   version: 1.1.0
#   severity: medium
#   enforcement: warn
#   profile: pss-restricted
#   controls: ["pss-restricted:volume-types", "nsa-cisa:pod-security:host-filesystem"]
package tribunal.admission.volume_types

import rego.v1

violations contains v if {
	some vol in data.tribunal.lib.kubernetes.volumes
	some vtype, source in vol.volume
	vtype != "name"
	source != null
	not vtype in {
		"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
		"persistentVolumeClaim", "projected", "secret",
	}
	msg := concat("", ["volume ", data.tribunal.lib.kubernetes.volume_name(vol), " uses type ", vtype])
	v := data.tribunal.lib.kubernetes.volume_violation(vol, msg, "medium", ["pss-restricted:volume-types", "nsa-cisa:pod-security:host-filesystem"], {"type": vtype})
}
