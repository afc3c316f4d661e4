# METADATA
# title: SELinux options
# description: SELinux type must be container_t, container_init_t or container_kvm_t, and no custom user or role may be set (PSS baseline).
# custom:
#   id: selinux
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:selinux", "cis-k8s:5.7.3", "nsa-cisa:pod-security:selinux"]
package tribunal.admission.selinux

import rego.v1

import data.tribunal.lib.kubernetes as k8s

controls := ["pss-baseline:selinux", "cis-k8s:5.7.3", "nsa-cisa:pod-security:selinux"]

allowed_types := {"", "container_t", "container_init_t", "container_kvm_t"}

# seLinuxOptions of a security context ({} when none).
options(sc) := data.tribunal.lib.kubernetes.object_of(object.get(sc, "seLinuxOptions", {}))

present(value) if {
	value != null
	value != ""
}

violations contains v if {
	some ps in k8s.pod_specs
	t := object.get(options(data.tribunal.lib.kubernetes.pod_security_context(ps.spec)), "type", "")
	not allowed_types[t]
	msg := concat("", ["pod seLinuxOptions type ", data.tribunal.lib.kubernetes.text(t), " is not allowed"])
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "securityContext.seLinuxOptions.type", msg, "high", controls, {"type": t})
}

violations contains v if {
	some ps in k8s.pod_specs
	some field in ["user", "role"]
	value := object.get(options(data.tribunal.lib.kubernetes.pod_security_context(ps.spec)), field, "")
	present(value)
	msg := concat("", ["pod seLinuxOptions sets ", field, " ", data.tribunal.lib.kubernetes.text(value)])
	v := data.tribunal.lib.kubernetes.pod_violation(ps, concat(".", ["securityContext.seLinuxOptions", field]), msg, "high", controls, {field: value})
}

violations contains v if {
	some c in k8s.containers
	t := object.get(options(c.sc), "type", "")
	not allowed_types[t]
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " seLinuxOptions type ", data.tribunal.lib.kubernetes.text(t), " is not allowed"])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {"type": t})
}

violations contains v if {
	some c in k8s.containers
	some field in ["user", "role"]
	value := object.get(options(c.sc), field, "")
	present(value)
	msg := concat("", [data.tribunal.lib.kubernetes.container_ref(c), " seLinuxOptions sets ", field, " ", data.tribunal.lib.kubernetes.text(value)])
	v := data.tribunal.lib.kubernetes.container_violation(c, msg, "high", controls, {field: value})
}
