package tribunal.falco.shell_in_container

import rego.v1

falco_input(rule, prio, fields) := {
	"kind": "falco",
	"event": {"rule": rule, "priority": prio, "output_fields": fields},
	"subject": {},
	"context": {},
}

container_shell_fields := {
	"container.id": "cbd3133ccac6",
	"container.image.repository": "alpine",
	"container.image.tag": "3.19",
	"k8s.ns.name": "default",
	"k8s.pod.name": "alpine",
	"proc.name": "sh",
	"proc.cmdline": "sh -c uptime",
	"proc.tty": 34816,
}

test_terminal_shell_alert_violates if {
	vs := violations with input as falco_input("Terminal shell in container", "Notice", container_shell_fields)
	count(vs) == 1
	some v in vs
	v.severity == "high"
	v.details.image == "alpine:3.19"
	v.details.pod == "alpine"
	v.details.shell == "sh"
	contains(v.msg, "Shell 'sh'")
	contains(v.msg, "container cbd3133ccac6")
	v.controls == ["nsa-cisa:threat-detection:runtime-monitoring"]
}

test_critical_priority_keeps_critical_severity if {
	vs := violations with input as falco_input("Run shell untrusted", "Critical", container_shell_fields)
	some v in vs
	v.severity == "critical"
}

test_renamed_rule_with_shell_and_tty_violates if {
	vs := violations with input as falco_input("Custom: someone typed in a pod", "Notice", container_shell_fields)
	count(vs) == 1
}

test_kubectl_exec_with_shell_violates if {
	vs := violations with input as falco_input("Attach/Exec Pod", "Notice", {
		"ka.target.name": "kubecon",
		"ka.target.namespace": "default",
		"ka.uri.param[command]": "sh",
	})
	count(vs) == 1
	some v in vs
	v.details.shell == "sh"
}

test_shell_without_terminal_is_compliant if {
	fields := object.union(container_shell_fields, {"proc.tty": 0})
	count(violations) == 0 with input as falco_input("Execution from /dev/shm", "Warning", fields)
}

test_shell_on_host_by_fields_is_compliant if {
	fields := object.union(container_shell_fields, {"container.id": "host"})
	count(violations) == 0 with input as falco_input("Some host rule", "Notice", fields)
}

test_unrelated_alert_is_compliant if {
	count(violations) == 0 with input as falco_input("Write below etc", "Error", {"fd.name": "/etc/x"})
}
