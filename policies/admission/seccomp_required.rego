# METADATA
# title: Seccomp profile required
# description: The seccomp profile must be RuntimeDefault or Localhost, at pod level or on every container (PSS restricted).
# custom:
#   id: seccomp_required
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: pss-restricted
#   controls: ["pss-restricted:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"]
package tribunal.admission.seccomp_required

import rego.v1

# The container's own profile type wins; when it is unset (null) the pod's applies; "" when neither is set.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	own := object.get(c.container, ["securityContext", "seccompProfile", "type"], null)
	not own in {"RuntimeDefault", "Localhost"}
	pod := object.get({"null": c.pod.spec}, [type_name(own), "securityContext", "seccompProfile", "type"], own)
	not pod in {"RuntimeDefault", "Localhost"}
	not c.pod.windows
	t := object.get({"null": ""}, type_name(pod), pod)
	shown := object.get({"": "unset"}, [t], t)
	v := {
		"msg": concat("", [c.ref, " seccomp profile is not RuntimeDefault/Localhost (", data.tribunal.lib.kubernetes.text(shown), ")"]),
		"severity": "medium",
		"controls": ["pss-restricted:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": "securityContext.seccompProfile.type", "type": t},
	}
}
