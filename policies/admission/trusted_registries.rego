# METADATA
# title: Trusted registries
# description: Images must come from a registry or prefix listed in data.tribunal.config.trusted_registries (an empty list trusts every registry).
# custom:
#   id: trusted_registries
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: supply-chain
#   controls: ["cis-k8s:5.5.1", "nsa-cisa:supply-chain:trusted-registries"]
package tribunal.admission.trusted_registries

import rego.v1

# Read by path: rego-cpp sees object.get(data, ...) as recursion. An empty or absent list trusts every
# registry. Containers are looked at first: reading data costs more than that check.
violations contains v if {
	data.tribunal.lib.kubernetes.containers[0]
	trusted := data.tribunal.config.trusted_registries
	is_array(trusted)
	count(trusted) > 0
	some c in data.tribunal.lib.kubernetes.containers
	image := c.image
	not data.tribunal.lib.kubernetes.image_matches_any(image, trusted)
	ref := data.tribunal.lib.kubernetes.image_reference(image)
	v := {
		"msg": concat("", [c.ref, " image '", image, "' (", ref, ") is not from a trusted registry"]),
		"severity": "high",
		"controls": ["cis-k8s:5.5.1", "nsa-cisa:supply-chain:trusted-registries"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "reference": ref, "registry": data.tribunal.lib.kubernetes.image_registry(image)},
	}
}
