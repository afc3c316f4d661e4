# METADATA
# title: Root user
# description: Pods and containers must not set runAsUser to 0, unless the pod runs in a user namespace (hostUsers false, Kubernetes 1.35).
# custom:
#   id: run_as_root_user
#   version: 1.1.0
#   severity: high
#   enforcement: deny
#   profile: pss-restricted
#   controls: ["pss-restricted:running-as-non-root-user", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"]
package tribunal.admission.run_as_root_user

import rego.v1

# A pod with `hostUsers: false` is exempt: UID 0 in its user namespace is an unprivileged UID on the
# node (PSS Restricted since Kubernetes 1.35).
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	ps.spec.securityContext.runAsUser == 0
	object.get(ps.spec, "hostUsers", true) != false
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.runAsUser", "pod runAsUser is 0 (root)", "high", ["pss-restricted:running-as-non-root-user", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"], {})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	c.container.securityContext.runAsUser == 0
	object.get(c.pod.spec, "hostUsers", true) != false
	v := {
		"msg": concat("", [c.ref, " runAsUser is 0 (root)"]),
		"severity": "high",
		"controls": ["pss-restricted:running-as-non-root-user", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.runAsUser"},
	}
}
