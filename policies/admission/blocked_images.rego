# METADATA
# title: Blocked images
# description: Images that Tribunal's block-image action recorded in data.tribunal.state.images (a fixable critical CVE found by Trivy, a runtime incident) are denied until a later clean Trivy report clears them. An entry matches a container image by digest, or by its normalised reference (registry/repository:tag).
# custom:
#   id: blocked_images
#   version: 1.0.0
#   severity: critical
#   enforcement: deny
#   profile: supply-chain
#   controls: ["nsa-cisa:supply-chain:image-scanning", "nsa-cisa:upgrading:patch-management", "cis-k8s:5.5.1"]
package tribunal.admission.blocked_images

import rego.v1

# Two bodies, one per way an entry matches; both build the same object, so a container matched both
# ways yields one violation. The state is looked at first: with nothing blocked the policy costs a
# lookup. (Read by path: rego-cpp sees object.get(data, ...) as recursion.)
violations contains v if {
	blocked := data.tribunal.state.images
	is_object(blocked)
	count(blocked) > 0
	some c in data.tribunal.lib.kubernetes.containers
	digest := data.tribunal.lib.kubernetes.image_digest(c.image)
	digest != ""
	some entry in blocked
	object.get(entry, "digest", "") == digest
	v := {
		"msg": concat("", [c.ref, " image '", c.image, "' is blocked: ", object.get(entry, "reason", "blocked by Tribunal")]),
		"severity": "critical",
		"controls": ["nsa-cisa:supply-chain:image-scanning", "nsa-cisa:upgrading:patch-management", "cis-k8s:5.5.1"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "blocked": object.get(entry, "reference", ""), "since": object.get(entry, "blocked_at", "")},
	}
}

violations contains v if {
	blocked := data.tribunal.state.images
	is_object(blocked)
	count(blocked) > 0
	some c in data.tribunal.lib.kubernetes.containers
	ref := data.tribunal.lib.kubernetes.image_reference(data.tribunal.lib.kubernetes.image_name(c.image))
	some entry in blocked
	object.get(entry, "reference", "") == ref
	v := {
		"msg": concat("", [c.ref, " image '", c.image, "' is blocked: ", object.get(entry, "reason", "blocked by Tribunal")]),
		"severity": "critical",
		"controls": ["nsa-cisa:supply-chain:image-scanning", "nsa-cisa:upgrading:patch-management", "cis-k8s:5.5.1"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "blocked": object.get(entry, "reference", ""), "since": object.get(entry, "blocked_at", "")},
	}
}
