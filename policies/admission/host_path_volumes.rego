# METADATA
# title: HostPath volumes
# description: Pods must not mount hostPath volumes (PSS baseline).
# custom:
#   id: host_path_volumes
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:hostpath-volumes", "cis-k8s:5.2.12", "nsa-cisa:pod-security:host-filesystem"]
package tribunal.admission.host_path_volumes

import rego.v1

violations contains v if {
	some vol in data.tribunal.lib.kubernetes.volumes
	hp := vol.volume.hostPath
	hp != null
	host_path := data.tribunal.lib.kubernetes.string_of(object.get(data.tribunal.lib.kubernetes.object_of(hp), "path", ""))
	msg := concat("", ["volume ", data.tribunal.lib.kubernetes.volume_name(vol), " is a hostPath volume (", host_path, ")"])
	v := data.tribunal.lib.kubernetes.volume_violation(vol, msg, "high", ["pss-baseline:hostpath-volumes", "cis-k8s:5.2.12", "nsa-cisa:pod-security:host-filesystem"], {"host_path": host_path})
}
