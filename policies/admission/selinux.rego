# METADATA
# title: SELinux options
# description: SELinux type must be container_t, container_init_t, container_kvm_t or container_engine_t (Kubernetes 1.31+), and no custom user or role may be set (PSS baseline).
# custom:
#   id: selinux
#   version: 1.1.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:selinux", "cis-k8s:5.7.3", "nsa-cisa:pod-security:selinux"]
package tribunal.admission.selinux

import rego.v1

# The type must be empty or one of the container types; user and role must not be set. One body per
# level, over the three fields: {field: value} in details, the field in the path.
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	opts := ps.spec.securityContext.seLinuxOptions
	is_object(opts)
	some field in ["type", "user", "role"]
	value := object.get(opts, field, "")
	not data.tribunal.lib.kubernetes.selinux_allowed(field, value)
	msg := concat("", ["pod seLinuxOptions ", data.tribunal.lib.kubernetes.selinux_problem(field, value)])
	v := data.tribunal.lib.kubernetes.pod_violation(ps, concat(".", ["securityContext.seLinuxOptions", field]), msg, "high", ["pss-baseline:selinux", "cis-k8s:5.7.3", "nsa-cisa:pod-security:selinux"], {field: value})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	opts := c.container.securityContext.seLinuxOptions
	is_object(opts)
	some field in ["type", "user", "role"]
	value := object.get(opts, field, "")
	not data.tribunal.lib.kubernetes.selinux_allowed(field, value)
	v := {
		"msg": concat("", [c.ref, " seLinuxOptions ", data.tribunal.lib.kubernetes.selinux_problem(field, value)]),
		"severity": "high",
		"controls": ["pss-baseline:selinux", "cis-k8s:5.7.3", "nsa-cisa:pod-security:selinux"],
		"details": {"container": c.name, "image": c.image, "path": c.path, field: value},
	}
}
