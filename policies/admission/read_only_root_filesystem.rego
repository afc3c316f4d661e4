# METADATA
# title: Read-only root filesystem
# description: Every container and init container must set securityContext.readOnlyRootFilesystem to true (ephemeral debug containers are exempt). Writable paths go on emptyDir or other volumes.
# custom:
#   id: read_only_root_filesystem
#   version: 1.0.0
#   severity: low
#   enforcement: warn
#   profile: hardening
#   controls: ["nsa-cisa:pod-security:immutable-fs"]
package tribunal.admission.read_only_root_filesystem

import rego.v1

# Trivy KSV014. Ephemeral containers are debugging sessions added to a running pod: exempt.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	not c.container.securityContext.readOnlyRootFilesystem == true
	c.field != "ephemeralContainers"
	v := {
		"msg": concat("", [c.ref, " does not set readOnlyRootFilesystem: true"]),
		"severity": "low",
		"controls": ["nsa-cisa:pod-security:immutable-fs"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.readOnlyRootFilesystem"},
	}
}
