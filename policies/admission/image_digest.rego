# METADATA
# title: Image pinned by digest
# description: Every image must be referenced by digest (image@sha256:...), which names exactly one image where a tag can be moved.
# custom:
#   id: image_digest
#   version: 1.0.0
#   severity: low
#   enforcement: dryrun
#   profile: supply-chain
#   controls: ["nsa-cisa:supply-chain:image-pinning"]
package tribunal.admission.image_digest

import rego.v1

# A digest is what follows "@" (not empty). image_tag judges tags; this one is stricter.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	image := c.image
	image != ""
	at := split(image, "@")
	not has_digest(at)
	v := {
		"msg": concat("", [c.ref, " image '", image, "' is not pinned by digest"]),
		"severity": "low",
		"controls": ["nsa-cisa:supply-chain:image-pinning"],
		"details": {"container": c.name, "image": c.image, "path": c.path},
	}
}

# (A helper rule, not `not at[1] != ""`: OPA reads that negation differently, docs/policies.md.)
has_digest(at) if at[1] != ""
