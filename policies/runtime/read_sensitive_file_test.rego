package tribunal.falco.read_sensitive_file

import rego.v1

falco_input(rule, prio, fields) := {
	"kind": "falco",
	"event": {"rule": rule, "priority": prio, "output_fields": fields},
	"subject": {"namespace": "trigger-falco-rule"},
	"context": {},
}

shadow_fields := {
	"container.id": "edabb60361fc",
	"container.image.repository": "docker.io/library/nginx",
	"container.image.tag": "1.27",
	"evt.type": "openat",
	"fd.name": "/etc/shadow",
	"proc.name": "cat",
	"proc.cmdline": "cat /etc/shadow",
}

test_read_sensitive_file_untrusted_violates if {
	vs := violations with input as falco_input("Read sensitive file untrusted", "Warning", shadow_fields)
	count(vs) == 1
	some v in vs
	v.severity == "high"
	v.details.file == "/etc/shadow"
	v.details.image == "docker.io/library/nginx:1.27"
	v.details.namespace == "trigger-falco-rule"
	contains(v.msg, "Process 'cat' read sensitive file /etc/shadow")
}

test_renamed_rule_opening_shadow_violates if {
	vs := violations with input as falco_input("Credential access", "Notice", shadow_fields)
	count(vs) == 1
}

test_open_of_ordinary_file_is_compliant if {
	fields := object.union(shadow_fields, {"fd.name": "/etc/hosts"})
	count(violations) == 0 with input as falco_input("Something else", "Warning", fields)
}

test_shell_alert_is_compliant if {
	count(violations) == 0 with input as falco_input("Terminal shell in container", "Notice", {"container.id": "abc", "proc.name": "sh"})
}
