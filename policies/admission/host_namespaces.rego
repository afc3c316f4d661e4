# METADATA
# title: Host namespaces
# description: Pods must not share the host network, PID or IPC namespace (PSS baseline).
# custom:
#   id: host_namespaces
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:host-namespaces", "cis-k8s:5.2.3", "cis-k8s:5.2.4", "cis-k8s:5.2.5", "nsa-cisa:pod-security:host-namespaces"]
package tribunal.admission.host_namespaces

import rego.v1

import data.tribunal.lib.kubernetes as k8s

violations contains v if {
	some ps in k8s.pod_specs
	ps.spec.hostNetwork == true
	controls := ["pss-baseline:host-namespaces", "cis-k8s:5.2.5", "nsa-cisa:pod-security:host-namespaces"]
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "hostNetwork", "pod shares the host network namespace (hostNetwork: true)", "high", controls, {})
}

violations contains v if {
	some ps in k8s.pod_specs
	ps.spec.hostPID == true
	controls := ["pss-baseline:host-namespaces", "cis-k8s:5.2.3", "nsa-cisa:pod-security:host-namespaces"]
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "hostPID", "pod shares the host PID namespace (hostPID: true)", "high", controls, {})
}

violations contains v if {
	some ps in k8s.pod_specs
	ps.spec.hostIPC == true
	controls := ["pss-baseline:host-namespaces", "cis-k8s:5.2.4", "nsa-cisa:pod-security:host-namespaces"]
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "hostIPC", "pod shares the host IPC namespace (hostIPC: true)", "high", controls, {})
}
