# METADATA
# title: Windows HostProcess
# description: Pods and containers must not run as Windows HostProcess (PSS baseline).
# custom:
#   id: host_process
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:host-process", "cis-k8s:5.2.11", "nsa-cisa:pod-security:privileged"]
package tribunal.admission.host_process

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:host-process", "cis-k8s:5.2.11", "nsa-cisa:pod-security:privileged"]

violations contains v if {
	some ps in k8s.pod_specs
	object.get(data.tribunal.lib.kubernetes.pod_security_context(ps.spec), ["windowsOptions", "hostProcess"], false) == true
	msg := "pod runs as Windows HostProcess (windowsOptions.hostProcess: true)"
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.windowsOptions.hostProcess", msg, "high", controls, {})
}

violations contains v if {
	some c in k8s.containers
	object.get(c.sc, ["windowsOptions", "hostProcess"], false) == true
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " runs as Windows HostProcess (windowsOptions.hostProcess: true)"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"field": "securityContext.windowsOptions.hostProcess"})
}
