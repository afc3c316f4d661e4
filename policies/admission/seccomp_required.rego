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

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-restricted:seccomp", "cis-k8s:5.7.2", "nsa-cisa:pod-security:seccomp"]

allowed_types := {"RuntimeDefault", "Localhost"}

# The container's own profile type wins; otherwise the pod's applies ("" when neither is set).
effective(c) := t if {
	t := object.get(c.sc, ["seccompProfile", "type"], null)
	t != null
} else := t if {
	t := object.get(c.pod_sc, ["seccompProfile", "type"], null)
	t != null
} else := ""

violations contains v if {
	some c in k8s.containers
	not data.tribunal.lib.kubernetes.is_windows(c.pod.spec)
	t := effective(c)
	not allowed_types[t]
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " seccomp profile is not RuntimeDefault/Localhost (", data.tribunal.lib.kubernetes.text(shown(t)), ")"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "medium", controls, {"field": "securityContext.seccompProfile.type", "type": t})
}

shown(t) := "unset" if {
	t == ""
} else := t
