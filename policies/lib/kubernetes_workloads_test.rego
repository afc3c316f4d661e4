# Every Pod Security Standards policy judges a Pod, each workload's pod template and a CronJob's job
# template alike, and a container alike in containers, initContainers and ephemeralContainers: one
# table of offending settings, each judged by its policy in every place. (Each policy's own
# violations are read, not the judge's aggregation: under `opa test` that would evaluate every test
# of every policy package as well, past the test timeout.)
package tribunal.lib.kubernetes

import rego.v1

alike_template_kinds := ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"]

alike_every_kind := array.concat(array.concat(["Pod"], alike_template_kinds), ["CronJob"])

# The admitted object of `kind` carrying the pod metadata `meta` and pod spec `spec`, and the path of
# that spec in it.
alike_workload(kind, meta, spec) := [{"apiVersion": "v1", "kind": "Pod", "metadata": object.union({"name": "p"}, meta), "spec": spec}, "spec"] if {
	kind == "Pod"
}

alike_workload(kind, meta, spec) := [obj, "spec.template.spec"] if {
	kind in alike_template_kinds
	obj := {"kind": kind, "metadata": {"name": "w"}, "spec": {"template": {"metadata": meta, "spec": spec}}}
}

alike_workload(kind, meta, spec) := [obj, "spec.jobTemplate.spec.template.spec"] if {
	kind == "CronJob"
	obj := {"kind": kind, "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"metadata": meta, "spec": spec}}}}}
}

# [policy, patch of a compliant container]: each must fire wherever the container is.
alike_container_cases := [
	["privileged_containers", {"securityContext": {"privileged": true}}],
	["capabilities_baseline", {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}}}],
	["capabilities_restricted", {"securityContext": {"capabilities": {"add": ["NET_RAW"], "drop": ["ALL"]}}}],
	["host_ports", {"ports": [{"containerPort": 80, "hostPort": 80}]}],
	["host_process", {"securityContext": {"windowsOptions": {"hostProcess": true}}}],
	["proc_mount", {"securityContext": {"procMount": "Unmasked"}}],
	["seccomp_unconfined", {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
	["seccomp_required", {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
	["selinux", {"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}],
	["apparmor", {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}],
	["privilege_escalation", {"securityContext": {"allowPrivilegeEscalation": true}}],
	["run_as_non_root", {"securityContext": {"runAsNonRoot": false}}],
	["run_as_root_user", {"securityContext": {"runAsUser": 0}}],
	["probe_host", {"livenessProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 80}}}],
]

# [policy, pod metadata, pod spec fields added to a compliant spec]
alike_pod_cases := [
	["host_namespaces", {}, {"hostPID": true}],
	["host_path_volumes", {}, {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}],
	["volume_types", {}, {"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}],
	["sysctls", {}, {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}],
	["run_as_root_user", {}, {"securityContext": {"runAsUser": 0}}],
	["selinux", {}, {"securityContext": {"seLinuxOptions": {"role": "sysadm_r"}}}],
	["seccomp_unconfined", {}, {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
	["apparmor", {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}, {}],
	["seccomp_unconfined", {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}, {}],
	["host_process", {}, {"securityContext": {"windowsOptions": {"hostProcess": true}}}],
	[
		"proc_mount_restricted", {},
		{"hostUsers": false, "containers": [mock_container_sc("app", {"procMount": "Unmasked"})]},
	],
]

alike_pss_policies := {case[0] | some case in array.concat(alike_container_cases, alike_pod_cases)}

alike_good_spec := {"containers": [mock_good_container("app")]}

# The violations of `policy` when the object of `kind` is judged.
alike_fired(kind, meta, spec, policy) := {v |
	w := alike_workload(kind, meta, spec)
	some v in data.tribunal.admission[policy].violations with input as mock_input(w[0])
}

test_a_compliant_pod_spec_fires_no_pss_policy_in_any_kind if {
	every kind in alike_every_kind {
		w := alike_workload(kind, {}, alike_good_spec)
		fired_policies := {policy |
			some policy in alike_pss_policies
			count(data.tribunal.admission[policy].violations) > 0
		} with input as mock_input(w[0])
		fired_policies == set()
	}
}

test_container_settings_are_judged_alike_in_every_kind_and_container_list if {
	every case in alike_container_cases {
		every kind in alike_every_kind {
			# the offending container in each of the three lists at once, beside a compliant one
			bad := object.union(mock_good_container("x"), case[1])
			spec := {
				"containers": [mock_good_container("app"), object.union(bad, {"name": "c"})],
				"initContainers": [object.union(bad, {"name": "i"})],
				"ephemeralContainers": [object.union(bad, {"name": "e"})],
			}
			found := alike_fired(kind, {}, spec, case[0])
			spec_path := alike_workload(kind, {}, spec)[1]
			places := {[v.details.container, v.details.path] | some v in found}
			places == {
				["c", concat("", [spec_path, ".containers[1]"])],
				["i", concat("", [spec_path, ".initContainers[0]"])],
				["e", concat("", [spec_path, ".ephemeralContainers[0]"])],
			}
		}
	}
}

test_pod_settings_are_judged_alike_in_every_kind if {
	every case in alike_pod_cases {
		every kind in alike_every_kind {
			spec := object.union(alike_good_spec, case[2])
			count(alike_fired(kind, case[1], spec, case[0])) > 0
		}
	}
}
