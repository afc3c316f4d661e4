package tribunal.lib.falco

import rego.v1

alert_input(rule, prio, fields) := {
	"kind": "falco",
	"event": {"rule": rule, "priority": prio, "output_fields": fields, "source": "syscall", "tags": ["container", "shell"]},
	"subject": {},
	"context": {},
}

test_priority_severity_mapping if {
	severity_of("Emergency") == "critical"
	severity_of("ALERT") == "critical"
	severity_of("critical") == "critical"
	severity_of("Error") == "high"
	severity_of("Warning") == "medium"
	severity_of("Notice") == "low"
	severity_of("Informational") == "info"
	severity_of("info") == "info"
	severity_of("Debug") == "info"
	severity_of("whatever") == "info"
}

test_priority_at_least_warning if {
	priority_at_least("warning") with input as alert_input("r", "Critical", {})
	priority_at_least("warning") with input as alert_input("r", "WARNING", {})
	not priority_at_least("warning") with input as alert_input("r", "Notice", {})
	not priority_at_least("warning") with input as alert_input("r", null, {})
}

test_severity_raised_to_floor_but_never_lowered if {
	severity_at_least("high") == "high" with input as alert_input("r", "Notice", {})
	severity_at_least("high") == "critical" with input as alert_input("r", "Critical", {})
}

test_field_defaults_when_missing_or_null if {
	field("proc.name") == "" with input as alert_input("r", "Notice", {})
	field("proc.name") == "" with input as alert_input("r", "Notice", {"proc.name": null})
	field("proc.name") == "" with input as {"event": {"output_fields": null}}
	field("proc.name") == "" with input as {"event": "not an alert"}
	field_string("proc.tty") == "34816" with input as alert_input("r", "Notice", {"proc.tty": 34816})
}

test_image_from_repository_and_tag if {
	image == "docker.io/library/nginx:1.27" with input as alert_input("r", "Notice", {
		"container.image.repository": "docker.io/library/nginx",
		"container.image.tag": "1.27",
	})
	image == "alpine" with input as alert_input("r", "Notice", {"container.image.repository": "alpine"})
	image == "" with input as alert_input("r", "Notice", {"container.image.repository": null})
}

test_in_container_excludes_host if {
	in_container with input as alert_input("r", "Notice", {"container.id": "a98c2aa8e670"})
	not in_container with input as alert_input("r", "Notice", {"container.id": "host"})
	not in_container with input as alert_input("r", "Notice", {})
}

test_has_tty_for_numbers_and_strings if {
	has_tty with input as alert_input("r", "Notice", {"proc.tty": 34816})
	has_tty with input as alert_input("r", "Notice", {"proc.tty": "1234"})
	not has_tty with input as alert_input("r", "Notice", {"proc.tty": 0})
	not has_tty with input as alert_input("r", "Notice", {})
}

test_categories_by_rule_name if {
	categories == {"shell"} with input as alert_input("Terminal shell in container", "Notice", {"container.id": "abc"})
	categories == {"write"} with input as alert_input("Write below etc", "Error", {})
	categories == {"read"} with input as alert_input("Read sensitive file trusted after startup", "Warning", {})
	categories == {"outbound"} with input as alert_input("Outbound Connection to C2 Servers", "Warning", {})
}

test_categories_from_fields_for_renamed_rules if {
	categories == {"read"} with input as alert_input("My shadow watcher", "Warning", {
		"fd.name": "/etc/shadow",
		"evt.type": "openat",
	})
	categories == {"write"} with input as alert_input("Custom drift", "Warning", {
		"fd.name": "/usr/bin/evil",
		"evt.arg.flags": "O_CREAT|O_WRONLY",
	})
	categories == {"shell"} with input as alert_input("Custom interactive", "Notice", {
		"container.id": "abc",
		"proc.name": "bash",
		"proc.tty": 34816,
	})
}

test_categories_empty_for_unrelated_alert if {
	count(categories) == 0 with input as {"event": {"rule": "GCP Bucket configured to be public", "priority": "Critical"}}
	count(categories) == 0 with input as {"event": "garbage"}
}

test_details_leave_out_empty_values if {
	d := details({"file": ""}) with input as alert_input("r", "Notice", {"container.id": "abc", "proc.name": "sh"})
	d.container_id == "abc"
	d.process == "sh"
	not d.file
	not d.image
	d.tags == ["container", "shell"]
}

test_where_names_container_image_and_pod if {
	w := where with input as alert_input("r", "Notice", {
		"container.id": "abc",
		"container.image.repository": "alpine",
		"k8s.ns.name": "default",
		"k8s.pod.name": "p",
	})
	w == "container abc (image alpine, pod default/p)"
}

# rule_pattern_index lists exactly the four pattern lists, each pattern under the 5 characters
# around its first space and with its category.
test_rule_pattern_index_matches_pattern_lists if {
	by_category := {
		"shell": shell_rule_patterns,
		"write": write_rule_patterns,
		"read": read_rule_patterns,
		"outbound": outbound_rule_patterns,
	}
	expected := {[gram, pattern, category] |
		some category in object.keys(by_category)
		some pattern in by_category[category]
		i := indexof(pattern, " ")
		i > 1
		gram := substring(pattern, i - 2, 5)
	}
	indexed := {[g, p, c] |
		some g in object.keys(rule_pattern_index)
		some p in object.keys(rule_pattern_index[g])
		c := rule_pattern_index[g][p]
	}
	indexed == expected
	count(expected) == (((count(shell_rule_patterns) + count(write_rule_patterns)) + count(read_rule_patterns)) + count(outbound_rule_patterns))
}

# The indexed match agrees with a plain scan of the patterns.
test_named_categories_agree_with_pattern_scan if {
	names := [
		"Terminal shell in container", "Unexpected outbound connection destination", "Write below etc",
		"Read sensitive file trusted after startup", "Outbound Connection to C2 Servers",
		"Redirect STDOUT/STDIN to Network Connection in Container", "GCP WAF rule modified or deleted",
		"Launch Suspicious Network Tool in Container", "x", "", "  shell  ", "Spawned shell with netcat",
	]
	every name in names {
		scanned := {c |
			some c, patterns in {
				"shell": shell_rule_patterns, "write": write_rule_patterns,
				"read": read_rule_patterns, "outbound": outbound_rule_patterns,
			}
			some p in patterns
			contains(lower(name), p)
		}
		named_categories == scanned with input as {"event": {"rule": name}}
	}
}
