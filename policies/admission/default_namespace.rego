# METADATA
# title: Workloads in the default namespace
# description: Pods and workloads must not be created in the default namespace; give each application a namespace of its own.
# custom:
#   id: default_namespace
#   version: 1.0.0
#   severity: low
#   enforcement: dryrun
#   profile: hygiene
#   controls: ["cis-k8s:5.7.4", "nsa-cisa:network-separation:namespaces"]
package tribunal.admission.default_namespace

import rego.v1

# Trivy KSV110: workload kinds only (a pod spec is present).
violations contains v if {
	data.tribunal.lib.kubernetes.pod_specs[0]
	data.tribunal.lib.kubernetes.object_namespace == "default"
	kind := data.tribunal.lib.kubernetes.object_kind
	name := data.tribunal.lib.kubernetes.object_name
	v := {
		"msg": concat("", [kind, " ", name, " is in the default namespace"]),
		"severity": "low",
		"controls": ["cis-k8s:5.7.4", "nsa-cisa:network-separation:namespaces"],
		"details": {"path": "metadata.namespace", "namespace": "default"},
	}
}
