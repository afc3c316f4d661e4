package tribunal.falco.write_below_sensitive_dir

import rego.v1

falco_input(rule, prio, fields) := {
	"kind": "falco",
	"event": {"rule": rule, "priority": prio, "output_fields": fields},
	"subject": {},
	"context": {},
}

test_write_below_binary_dir_violates if {
	vs := violations with input as falco_input("Write below binary dir", "Error", {
		"fd.name": "/bin/hack",
		"proc.cmdline": "touch /bin/hack",
		"user.name": "root",
	})
	count(vs) == 1
	some v in vs
	v.severity == "high"
	v.details.file == "/bin/hack"
	contains(v.msg, "/bin/hack")
	"nsa-cisa:pod-security:immutable-fs" in v.controls
}

test_custom_rule_writing_binary_dir_violates_by_fields if {
	vs := violations with input as falco_input("Drift detector", "Warning", {
		"container.id": "6ca2cc23ec7d",
		"fd.name": "/usr/local/bin/sh",
		"evt.arg.flags": "O_EXCL|O_CREAT|O_WRONLY",
		"proc.name": "cp",
	})
	count(vs) == 1
	some v in vs
	v.severity == "high"
	contains(v.msg, "Process 'cp'")
}

test_critical_write_keeps_critical if {
	vs := violations with input as falco_input("Write below root", "Critical", {"fd.name": "/root/x"})
	some v in vs
	v.severity == "critical"
}

test_read_only_open_below_etc_is_compliant if {
	count(violations) == 0 with input as falco_input("Custom read", "Warning", {
		"fd.name": "/etc/hosts",
		"evt.arg.flags": "O_RDONLY",
	})
}

test_write_to_tmp_is_compliant if {
	count(violations) == 0 with input as falco_input("Custom write", "Warning", {
		"fd.name": "/tmp/x",
		"evt.arg.flags": "O_CREAT|O_WRONLY",
	})
}
