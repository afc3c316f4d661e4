# METADATA
# title: Root group
# description: Pods and containers must not run with the root group (GID 0) as runAsGroup, fsGroup or one of supplementalGroups.
# custom:
#   id: root_group
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: hardening
#   controls: ["nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"]
package tribunal.admission.root_group

import rego.v1

# Trivy KSV029. Files owned by group 0 (most of an image) are writable through it.
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	some field in ["runAsGroup", "fsGroup"]
	object.get(ps.spec, ["securityContext", field], null) == 0
	v := data.tribunal.lib.kubernetes.pod_violation(ps, concat("", ["securityContext.", field]), concat("", ["pod ", field, " is 0 (root group)"]), "medium", ["nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"], {})
}

violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	groups := object.get(ps.spec, ["securityContext", "supplementalGroups"], [])
	0 in object.get({"array": groups}, type_name(groups), [])
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.supplementalGroups", "pod supplementalGroups include 0 (root group)", "medium", ["nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"], {})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.container.securityContext.runAsGroup == 0
	v := {
		"msg": concat("", [c.ref, " runAsGroup is 0 (root group)"]),
		"severity": "medium",
		"controls": ["nsa-cisa:pod-security:non-root-containers", "cis-k8s:5.7.3"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.runAsGroup"},
	}
}
