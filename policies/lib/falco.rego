# METADATA
# title: Falco helpers
# description: |
#   Shared helpers for the runtime policies (package tribunal.falco.<policy_id>), over one Falco
#   alert as Falco's JSON output and falcosidekick send it: `input.event` is
#   {"rule", "priority", "output", "output_fields", "source", "tags", "hostname", "time", ...},
#   any of which may be missing or null (old Falco versions send no hostname, source or tags).
#
#   - severity_of(priority): Falco priority -> Tribunal severity, case-insensitive:
#     emergency/alert/critical -> critical, error -> high, warning -> medium, notice -> low,
#     informational/info/debug (and anything unknown) -> info.
#   - field(name) / field_string(name): output_fields access with safe defaults ("" when absent or null).
#   - image, container_id, in_container, process, cmdline, file, namespace, pod, ...
#   - categories: which of the named runtime policies an alert belongs to (matched on the rule
#     name first, then on tags and output_fields so renamed or custom rules still match). The
#     catch-all policy falco_alert covers what no category claims.
#   - details(extra): the responder's view of the alert, empty values left out.
#
#   Control ids used by the runtime policies (framework catalogue authors: reuse these):
#
#   nsa-cisa:threat-detection:runtime-monitoring   every runtime violation
#   nsa-cisa:pod-security:immutable-fs             write below a sensitive directory
#   nsa-cisa:pod-security:non-root-containers      read of a sensitive file (root-only files)
#   nsa-cisa:network-separation:network-policies   unexpected outbound connection
#   cis-k8s:5.7.3                                  security context applied (write / read)
#   cis-k8s:5.3.2                                  namespaces have network policies (outbound)
#
#   Engine notes (measured on regorus and regopy/rego-cpp):
#   - regorus errors on iterating null: every iteration goes through array_of / object_of.
#   - rego-cpp rejects one-line `[x | a; b]` comprehensions and `some k, v in` inside a
#     comprehension: neither is used.
#   - rego-cpp's sprintf("%s") wraps some strings in quotes (those made by concat, empty
#     defaults): strings are joined with concat, never sprintf.
#   - rego-cpp's sort(set) returns a set (so sort(set()) != [] and it cannot be indexed): sets are
#     turned into arrays before sorting, and emptiness is tested with count.
#   - rego-cpp crashes when two packages define functions of one name with different arities:
#     names here are kept distinct from the other libraries'.
#   - regorus fails ("statements not scheduled") on a comprehension in the head of a rule that
#     has a body: such comprehensions get a rule of their own.
#   - regorus cannot call a function through an import alias (rules are fine): policies call
#     these functions by their full path, data.tribunal.lib.falco.f(x).
package tribunal.lib.falco

import rego.v1

# ---------------------------------------------------------------------------------------------
# Generic guards

array_of(x) := x if {
	is_array(x)
} else := []

object_of(x) := x if {
	is_object(x)
} else := {}

string_of(x) := x if {
	is_string(x)
} else := ""

# ---------------------------------------------------------------------------------------------
# The alert

default alert := {}

alert := a if {
	a := input.event
	is_object(a)
}

fields := object_of(object.get(alert, "output_fields", {}))

rule := string_of(object.get(alert, "rule", ""))

rule_lower := lower(rule)

source := string_of(object.get(alert, "source", ""))

hostname := string_of(object.get(alert, "hostname", ""))

priority := string_of(object.get(alert, "priority", ""))

priority_lower := lower(priority)

tags contains lower(t) if {
	some t in array_of(object.get(alert, "tags", []))
	is_string(t)
}

# An output field, "" when absent or null (numbers and booleans are kept as they are).
field(name) := v if {
	v := fields[name]
	v != null
} else := ""

# An output field as a string ("" when absent or null; numbers formatted).
field_string(name) := v if {
	v := fields[name]
	is_string(v)
} else := v if {
	x := fields[name]
	is_number(x)
	v := sprintf("%v", [x])
} else := ""

# ---------------------------------------------------------------------------------------------
# Priority and severity

priority_rank := {
	"emergency": 7,
	"alert": 6,
	"critical": 5,
	"error": 4,
	"warning": 3,
	"warn": 3,
	"notice": 2,
	"informational": 1,
	"info": 1,
	"debug": 0,
}

priority_severity := {
	"emergency": "critical",
	"alert": "critical",
	"critical": "critical",
	"error": "high",
	"warning": "medium",
	"warn": "medium",
	"notice": "low",
	"informational": "info",
	"info": "info",
	"debug": "info",
}

severity_of(p) := s if {
	s := priority_severity[lower(p)]
} else := "info"

# Rank of a priority; unknown priorities rank as informational.
rank_of(p) := r if {
	r := priority_rank[lower(p)]
} else := 1

# The alert's priority is at least `minimum` (e.g. "warning").
priority_at_least(minimum) if rank_of(priority) >= priority_rank[minimum]

severity := severity_of(priority)

severity_rank := {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

# The higher of two severities.
max_severity(a, b) := a if {
	severity_rank[a] >= severity_rank[b]
} else := b

# The alert's severity, raised to at least `floor`.
severity_at_least(floor) := max_severity(severity, floor)

# ---------------------------------------------------------------------------------------------
# Container, Kubernetes, process, file

container_id := field_string("container.id")

# The alert comes from a container (not the host, not a non-syscall source).
in_container if {
	container_id != ""
	container_id != "host"
}

container_name := field_string("container.name")

# repository:tag, or repository alone, or the older `container.image` field.
image := concat("", [repo, ":", tag]) if {
	repo := field_string("container.image.repository")
	repo != ""
	tag := field_string("container.image.tag")
	tag != ""
} else := repo if {
	repo := field_string("container.image.repository")
	repo != ""
} else := field_string("container.image")

namespace := ns if {
	ns := field_string("k8s.ns.name")
	ns != ""
} else := ns if {
	ns := field_string("ka.target.namespace")
	ns != ""
} else := string_of(object.get(input, ["subject", "namespace"], ""))

pod := p if {
	p := field_string("k8s.pod.name")
	p != ""
} else := string_of(object.get(input, ["subject", "pod"], ""))

process := field_string("proc.name")

cmdline := field_string("proc.cmdline")

parent := field_string("proc.pname")

exepath := field_string("proc.exepath")

user := field_string("user.name")

event_type := field_string("evt.type")

file := f if {
	f := field_string("fd.name")
	f != ""
} else := f if {
	f := field_string("fs.path.name")
	f != ""
} else := field_string("fd.filename")

connection := field_string("fd.name")

# An interactive terminal is attached (proc.tty is a number, or a numeric string, other than 0).
has_tty if {
	t := field("proc.tty")
	is_number(t)
	t != 0
}

has_tty if {
	t := field("proc.tty")
	is_string(t)
	not t in {"", "0"}
}

# ---------------------------------------------------------------------------------------------
# Named categories (one per named runtime policy)

shells := {"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "ash", "busybox", "rbash"}

# basename of a path, for "/bin/sh" -> "sh"
basename(p) := b if {
	parts := split(p, "/")
	b := parts[count(parts) - 1]
}

is_shell_name(n) if basename(trim_space(n)) in shells

shell_rule_patterns := [
	"terminal shell",
	"run shell",
	"shell spawned",
	"spawned shell",
	"shell in container",
	"shell in a container",
	"interactive shell",
	"reverse shell",
	"shell untrusted",
]

write_rule_patterns := [
	"write below",
	"write binary",
	"below binary dir",
	"binary dirs",
	"below etc",
	"below root",
	"below dev",
	"rpm database",
	"monitored dir",
	"sensitive dir",
	"modify binary",
]

read_rule_patterns := [
	"read sensitive file",
	"sensitive file",
	"read ssh information",
	"monitored file read",
	"shadow file",
]

outbound_rule_patterns := [
	"outbound connection",
	"outbound traffic",
	"c2 server",
	"command and control",
	"disallowed ssh connection",
	"unexpected udp",
	"unexpected network",
	"unexpected connection",
	"disallowed connection",
	"network connection to",
	"connection to miner",
	"mining pool",
	"netcat remote code execution",
	"redirect stdout/stdin to network",
]

rule_matches(patterns) if {
	some p in patterns
	contains(rule_lower, p)
}

# Categories matched on the rule name (plus a few tags that name the behaviour).
named_categories contains "shell" if rule_matches(shell_rule_patterns)

named_categories contains "shell" if {
	"shell" in tags
	in_container
	not contains(rule_lower, "config")
	not contains(rule_lower, "history")
}

# kubectl exec / attach into a pod with a shell command (k8s_audit source).
named_categories contains "shell" if {
	contains(rule_lower, "exec")
	contains(rule_lower, "pod")
	is_shell_name(field_string("ka.uri.param[command]"))
}

named_categories contains "write" if rule_matches(write_rule_patterns)

named_categories contains "read" if rule_matches(read_rule_patterns)

named_categories contains "outbound" if rule_matches(outbound_rule_patterns)

named_categories contains "outbound" if {
	"c2" in tags
}

sensitive_write_dirs := [
	"/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/",
	"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/boot/", "/etc/", "/root/",
	"/var/lib/rpm/", "/var/lib/dpkg/",
]

sensitive_files := {
	"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/pam.conf",
	"/etc/security/pwquality.conf", "/etc/master.passwd", "/root/.bash_history",
}

sensitive_file_prefixes := ["/etc/sudoers.d/", "/etc/pam.d/", "/root/.ssh/", "/etc/kubernetes/pki/"]

is_sensitive_file(f) if f in sensitive_files

is_sensitive_file(f) if {
	some p in sensitive_file_prefixes
	startswith(f, p)
}

is_sensitive_file(f) if contains(f, "/.ssh/id_")

under_sensitive_dir(f) if {
	some d in sensitive_write_dirs
	startswith(f, d)
}

write_flags := ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]

opened_for_write if {
	flags := field_string("evt.arg.flags")
	some w in write_flags
	contains(flags, w)
}

open_types := {"open", "openat", "openat2", "open_by_handle_at"}

# Field-based categories, used only when the rule name claims none (renamed or custom rules).
field_categories contains "shell" if {
	in_container
	is_shell_name(process)
	has_tty
}

field_categories contains "write" if {
	under_sensitive_dir(file)
	opened_for_write
}

field_categories contains "read" if {
	is_sensitive_file(file)
	event_type in open_types
	not opened_for_write
}

field_categories contains "outbound" if {
	event_type in {"connect", "sendto", "sendmsg"}
	"network" in tags
	priority_at_least("warning")
}

categories := named_categories if {
	count(named_categories) > 0
} else := field_categories

# Falco's own operational events (metrics snapshots, event drops) rather than detections. No
# policy exempts them: the catch-all treats them like any alert (only Warning and above count).
internal if source == "internal"

internal if startswith(rule_lower, "falco internal")

# ---------------------------------------------------------------------------------------------
# Details

# The responder's view of the alert, with `extra` merged in; empty strings are left out so that
# `image` is only present when known (exceptions match on it).
details(extra) := {k: v |
	merged := object.union(base_details, extra)
	some k
	v := merged[k]
	not empty_value(v)
}

empty_value(v) if v == ""

empty_value(v) if v == null

base_details := {
	"rule": rule,
	"priority": priority,
	"source": source,
	"hostname": hostname,
	"time": string_of(object.get(alert, "time", "")),
	"container_id": container_id,
	"container_name": container_name,
	"image": image,
	"namespace": namespace,
	"pod": pod,
	"process": process,
	"cmdline": cmdline,
	"parent": parent,
	"user": user,
	"tags": tag_list,
	"output": string_of(object.get(alert, "output", "")),
}

# The tags as a sorted list, "" (left out of details) when there are none.
sorted_tags := sort([tag |
	some tag in tags
])

tag_list := sorted_tags if {
	count(tags) > 0
} else := ""

# "container 1234 (image alpine:3.19, pod default/alpine)", "the host", "pod ns/name" (k8s_audit
# and plugin sources), or "unknown location"
where := concat("", ["container ", container_id, where_suffix]) if {
	in_container
} else := "the host" if {
	container_id == "host"
} else := concat("", ["pod ", pod_ref]) if {
	pod != ""
} else := "unknown location"

where_suffix := concat("", [" (", concat(", ", where_parts), ")"]) if {
	count(where_parts) > 0
} else := ""

where_parts := array.concat(image_part, pod_part)

# namespace/pod, or the pod alone when the namespace is unknown
pod_ref := concat("/", [namespace, pod]) if {
	namespace != ""
} else := pod

image_part := [concat("", ["image ", image])] if {
	image != ""
} else := []

pod_part := [concat("", ["pod ", pod_ref])] if {
	pod != ""
} else := []
