# METADATA
# title: Image tag pinned
# description: Every image must carry an explicit tag other than latest, or a digest.
# custom:
#   id: image_tag
#   version: 1.0.0
#   severity: low
#   enforcement: warn
#   profile: hygiene
#   controls: ["nsa-cisa:supply-chain:image-pinning", "cis-k8s:5.5.1"]
package tribunal.admission.image_tag

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["nsa-cisa:supply-chain:image-pinning", "cis-k8s:5.5.1"]

violations contains v if {
	some c in k8s.containers
	c.image != ""
	data.tribunal.lib.kubernetes.image_digest(c.image) == ""
	data.tribunal.lib.kubernetes.image_tag(c.image) == ""
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " image '", c.image, "' is untagged (implicit latest)"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "low", controls, {"tag": ""})
}

violations contains v if {
	some c in k8s.containers
	data.tribunal.lib.kubernetes.image_digest(c.image) == ""
	data.tribunal.lib.kubernetes.image_tag(c.image) == "latest"
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " image '", c.image, "' uses the latest tag"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "low", controls, {"tag": "latest"})
}
