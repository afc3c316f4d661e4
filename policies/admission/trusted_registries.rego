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

import data.tribunal.lib.kubernetes as k8s

controls := ["cis-k8s:5.5.1", "nsa-cisa:supply-chain:trusted-registries"]

default trusted := []

# Read by path: rego-cpp sees object.get(data, ...) as recursion.
trusted := data.tribunal.config.trusted_registries if is_array(data.tribunal.config.trusted_registries)

is_trusted(image) if {
	some entry in trusted
	data.tribunal.lib.kubernetes.image_matches_prefix(image, entry)
}

violations contains v if {
	count(trusted) > 0
	some c in k8s.containers
	not is_trusted(c.image)
	ref := data.tribunal.lib.kubernetes.image_reference(c.image)
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " image '", c.image, "' (", ref, ") is not from a trusted registry"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"reference": ref, "registry": data.tribunal.lib.kubernetes.image_registry(c.image)})
}
