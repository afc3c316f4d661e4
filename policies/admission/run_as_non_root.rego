# METADATA
# title: Run as non-root
# description: runAsNonRoot must be true at pod level (with no container setting it false) or on every container, unless the pod runs in a user namespace (hostUsers false, Kubernetes 1.35) (PSS restricted).
# custom:
#   id: run_as_non_root
#   version: 1.1.0
#   severity: medium
#   enforcement: warn
#   profile: pss-restricted
#   controls: ["pss-restricted:running-as-non-root", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"]
package tribunal.admission.run_as_non_root

import rego.v1

# The container's own runAsNonRoot wins; when it is unset the pod's applies. A pod with
# `hostUsers: false` is exempt (root in its user namespace is not root on the node; PSS 1.35).
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	value := object.get(c.container, ["securityContext", "runAsNonRoot"], null)
	value != true
	value in {false, null}
	object.get(c.pod.spec, "hostUsers", true) != false
	object.get({"null": c.pod.spec}, [type_name(value), "securityContext", "runAsNonRoot"], null) != true
	why := object.get({"null": "unset on the container and the pod"}, type_name(value), "false")
	v := {
		"msg": concat("", [c.ref, " runAsNonRoot is not true (", why, ")"]),
		"severity": "medium",
		"controls": ["pss-restricted:running-as-non-root", "cis-k8s:5.2.7", "nsa-cisa:pod-security:non-root-containers"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.runAsNonRoot"},
	}
}
