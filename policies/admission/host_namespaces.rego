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

# One body for the three namespaces; each violation names only the CIS control of its namespace.
# (A list of [field, name, control], not an object literal indexed by a variable: rego-cpp finds
# nothing in those.)
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	some ns in [["hostNetwork", "network", "cis-k8s:5.2.5"], ["hostPID", "PID", "cis-k8s:5.2.3"], ["hostIPC", "IPC", "cis-k8s:5.2.4"]]
	ps.spec[ns[0]] == true
	msg := concat("", ["pod shares the host ", ns[1], " namespace (", ns[0], ": true)"])
	v := data.tribunal.lib.kubernetes.pod_violation(ps, ns[0], msg, "high", ["pss-baseline:host-namespaces", ns[2], "nsa-cisa:pod-security:host-namespaces"], {})
}
