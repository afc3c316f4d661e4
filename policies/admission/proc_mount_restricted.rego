# METADATA
# title: /proc mount type (restricted)
# description: Containers must use the Default /proc mount type even in a user namespace (hostUsers false), where Baseline allows any (PSS restricted, Kubernetes 1.35).
# custom:
#   id: proc_mount_restricted
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-restricted
#   controls: ["pss-restricted:proc-mount-type"]
package tribunal.admission.proc_mount_restricted

import rego.v1

# Pod Security Admission 1.35 relaxes the Baseline procMount check for pods with `hostUsers: false`
# and adds procMount_restricted, which does not. Outside a user namespace the Baseline policy
# (proc_mount) already reports the container, so this one speaks only for user-namespace pods.
# It denies by default, as run_as_root_user does for an explicit runAsUser: 0: an unmasked /proc is
# asked for explicitly, and Gatekeeper's and Kyverno's procMount policies refuse it in a user
# namespace too. Where nested container runtimes need it, set this policy to warn or dryrun
# (rules/enforcement.yaml) or write an exception: the Baseline verdict already allows it.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	mount := object.get(c.container, ["securityContext", "procMount"], "Default")
	mount != "Default"
	mount != null
	c.pod.spec.hostUsers == false
	v := {
		"msg": concat("", [c.ref, " procMount is ", data.tribunal.lib.kubernetes.text(mount), " (Restricted allows only Default, even with hostUsers: false)"]),
		"severity": "high",
		"controls": ["pss-restricted:proc-mount-type"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "proc_mount": mount},
	}
}
