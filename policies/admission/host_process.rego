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

violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	ps.spec.securityContext.windowsOptions.hostProcess == true
	msg := "pod runs as Windows HostProcess (windowsOptions.hostProcess: true)"
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.windowsOptions.hostProcess", msg, "high", ["pss-baseline:host-process", "cis-k8s:5.2.11", "nsa-cisa:pod-security:privileged"], {})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.container.securityContext.windowsOptions.hostProcess == true
	v := {
		"msg": concat("", [c.ref, " runs as Windows HostProcess (windowsOptions.hostProcess: true)"]),
		"severity": "high",
		"controls": ["pss-baseline:host-process", "cis-k8s:5.2.11", "nsa-cisa:pod-security:privileged"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.windowsOptions.hostProcess"},
	}
}
