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

# [registry/]repository[:tag][@digest]: without a digest, the tag (after the last ":" of the last
# path segment) must be present and not "latest". One pass of builtins per container. (Not
# object.get with an array index in the path: rego-cpp fails on an index out of range there.)
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	image := c.image
	image != ""
	at := split(image, "@")
	not has_digest(at) # no digest (none, or an empty one)
	parts := split(at[0], "/")
	segs := split(parts[count(parts) - 1], ":")
	tag := concat("", array.slice(segs, max([1, count(segs) - 1]), count(segs))) # "" when untagged
	tag in {"", "latest"}
	what := object.get({"": "' is untagged (implicit latest)"}, tag, "' uses the latest tag")
	v := {
		"msg": concat("", [c.ref, " image '", image, what]),
		"severity": "low",
		"controls": ["nsa-cisa:supply-chain:image-pinning", "cis-k8s:5.5.1"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "tag": tag},
	}
}

has_digest(at) if at[1] != ""
