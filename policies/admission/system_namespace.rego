# METADATA
# title: Workloads in system namespaces
# description: Pods and workloads must not be created in the namespaces reserved for the cluster's own components, data.tribunal.config.system_namespaces (default kube-system).
# custom:
#   id: system_namespace
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: hygiene
#   controls: ["nsa-cisa:network-separation:namespaces"]
package tribunal.admission.system_namespace

import rego.v1

# Trivy KSV037, workload kinds only. Cluster components that belong there (CNI, CSI, DNS) are given
# an exception by namespace and image. The chart's webhook does not send kube-system at all by default
# (webhook.excludeNamespaces): remove it there for this policy to see that namespace.
violations contains v if {
	data.tribunal.lib.kubernetes.pod_specs[0]
	ns := data.tribunal.lib.kubernetes.object_namespace
	reserved := data.tribunal.config.system_namespaces
	is_array(reserved)
	ns in reserved
	kind := data.tribunal.lib.kubernetes.object_kind
	name := data.tribunal.lib.kubernetes.object_name
	v := {
		"msg": concat("", [kind, " ", name, " is in the system namespace ", ns]),
		"severity": "medium",
		"controls": ["nsa-cisa:network-separation:namespaces"],
		"details": {"path": "metadata.namespace", "namespace": ns},
	}
}
