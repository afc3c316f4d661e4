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
#   - known_rule, known_severity, known_controls: the catalogue entry of a Falco default rule
#     (data.tribunal.config.falco_rules), read by falco_alert.
#   - details(extra): the responder's view of the alert, empty values left out.
#
#   Control ids used by the runtime policies (framework catalogue authors: reuse these):
#
#   nsa-cisa:threat-detection:runtime-monitoring   every runtime violation
#   nsa-cisa:pod-security:immutable-fs             write below a sensitive directory
#   nsa-cisa:pod-security:non-root-containers      read of a sensitive file (root-only files)
#   cis-k8s:5.7.3                                  security context applied (write / read)
#   (An outbound connection alert names no network-policy control: it shows nothing of whether a
#   namespace has NetworkPolicies, CIS 5.3.2 and NSA network-separation:network-policies.)
#   falco_alert names, besides runtime-monitoring, the controls the catalogue of Falco's default
#   rules (data.tribunal.config.falco_rules, policies/data/falco_rules.json) gives the rule.
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
#
#   Speed (regorus, the default engine, judges every alert with one query over every policy):
#   - Policies read these rules by their full path, data.tribunal.lib.falco.x, never through an
#     import alias: regorus evaluates the whole aliased package (every rule in it) on first use.
#   - Policies define nothing but `controls` and `violations`: the judge reads each policy
#     package as a whole, so every other rule there would be evaluated for every alert. What a
#     message needs (actor, where, severity floors, details) is a rule here, evaluated lazily and
#     once per query; each policy body starts with its category test and stops at once.
#   - Rules are cached per query, functions are not: the hot path uses rules and builtins
#     (object.get over `string_fields`), not helper functions. The functions (field, severity_of,
#     details, ...) stay for tests and custom policies.
#   - The rule-name categories test only the patterns indexed under the 5 characters around each
#     space of the rule name (`rule_pattern_index`) instead of scanning ~40 patterns: a pattern
#     occurs in the name only if its own characters around its first space occur around one of
#     the name's spaces. No regex or glob: regorus compiles those on every call.
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

# The output fields the policies read that have a value as a non-empty string (numbers
# formatted): what field_string returns for them, in one pass (object.filter first: alerts carry
# up to ~50 fields). object.get(string_fields, name, "") is field_string(name), and nested
# object.get defaults give "the first non-empty of these fields". Reads input directly: every
# rule in between costs regorus several microseconds.
default string_fields := {}

string_fields := object.union(strings, numbers) if {
	event := input.event
	is_object(event)
	all_fields := event.output_fields
	is_object(all_fields)
	read := object.filter(all_fields, [
		"container.id", "container.name", "container.image.repository", "container.image.tag",
		"container.image", "k8s.ns.name", "ka.target.namespace", "k8s.pod.name", "proc.name",
		"proc.cmdline", "proc.pname", "proc.exepath", "user.name", "evt.type", "evt.arg.flags",
		"fd.name", "fs.path.name", "fd.filename", "fd.rip", "fd.rport", "fd.l4proto",
		"ka.uri.param[command]",
	])
	strings := {k: v |
		some k
		v := read[k]
		is_string(v)
		v != ""
	}
	numbers := {k: v |
		some k
		x := read[k]
		is_number(x)
		v := sprintf("%v", [x])
	}
}

# The alert's own string attributes (shown in details), when non-empty.
default alert_strings := {}

alert_strings := found if {
	event := input.event
	is_object(event)
	found := {key: v |
		some key in ["rule", "priority", "source", "hostname", "time", "output"]
		v := event[key]
		is_string(v)
		v != ""
	}
}

rule := object.get(alert_strings, "rule", "")

rule_lower := lower(rule)

source := object.get(alert_strings, "source", "")

hostname := object.get(alert_strings, "hostname", "")

priority := object.get(alert_strings, "priority", "")

priority_lower := lower(priority)

tags contains lower(t) if {
	event := input.event
	is_object(event)
	all_tags := event.tags
	is_array(all_tags)
	some t in all_tags
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

severity_of(p) := object.get(priority_severity, lower(p), "info")

# Rank of a priority; unknown priorities rank as informational.
rank_of(p) := object.get(priority_rank, lower(p), 1)

# The alert's priority is at least `minimum` (e.g. "warning").
priority_at_least(minimum) if object.get(priority_rank, priority_lower, 1) >= priority_rank[minimum]

# priority_at_least("warning"), as a rule (cached).
priority_warning_or_above if {
	lower(object.get(alert_strings, "priority", "")) in {"emergency", "alert", "critical", "error", "warning", "warn"}
}

severity := object.get(priority_severity, priority_lower, "info")

severity_rank := {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

# The higher of two severities.
max_severity(a, b) := a if {
	severity_rank[a] >= severity_rank[b]
} else := b

# The alert's severity, raised to at least `floor`.
severity_at_least(floor) := max_severity(severity, floor)

# severity_at_least("high") and severity_at_least("medium"), as rules (cached).
# (Straight from the priority: emergency/alert/critical -> critical, error -> high.)
severity_at_least_high := object.get(
	{"emergency": "critical", "alert": "critical", "critical": "critical"},
	lower(object.get(alert_strings, "priority", "")), "high",
)

severity_at_least_medium := object.get(
	{"emergency": "critical", "alert": "critical", "critical": "critical", "error": "high"},
	lower(object.get(alert_strings, "priority", "")), "medium",
)

# ---------------------------------------------------------------------------------------------
# Container, Kubernetes, process, file

container_id := object.get(string_fields, "container.id", "")

# The alert comes from a container (not the host, not a non-syscall source).
in_container if {
	container_id != ""
	container_id != "host"
}

container_name := object.get(string_fields, "container.name", "")

# repository:tag, or repository alone, or the older `container.image` field.
# (Lookups with object.get and a check after them, never a body ending in `x := a[k]` before an
# `else`: regorus's RVM then takes "<undefined>" instead of the else value; docs/policies.md, Engines.)
image := concat("", [repo, ":", tag]) if {
	repo := object.get(string_fields, "container.image.repository", "")
	tag := object.get(string_fields, "container.image.tag", "")
	repo != ""
	tag != ""
} else := object.get(string_fields, "container.image.repository", object.get(string_fields, "container.image", ""))

namespace := object.get(string_fields, "k8s.ns.name", object.get(
	string_fields, "ka.target.namespace",
	string_of(object.get(input, ["subject", "namespace"], "")),
))

pod := object.get(string_fields, "k8s.pod.name", string_of(object.get(input, ["subject", "pod"], "")))

process := object.get(string_fields, "proc.name", "")

cmdline := object.get(string_fields, "proc.cmdline", "")

parent := object.get(string_fields, "proc.pname", "")

exepath := object.get(string_fields, "proc.exepath", "")

user := object.get(string_fields, "user.name", "")

event_type := object.get(string_fields, "evt.type", "")

file := object.get(string_fields, "fd.name", object.get(string_fields, "fs.path.name", object.get(string_fields, "fd.filename", "")))

connection := object.get(string_fields, "fd.name", "")

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

# Rule-name patterns per category (lower case, each with a space that has at least two
# characters on either side). Matching goes through rule_pattern_index below, which must list
# exactly these patterns (a test checks it).
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

# Each pattern under the 5 characters around its first space (2 before, the space, 2 after):
# a pattern occurs in the rule name only if those 5 characters occur around one of its spaces.
rule_pattern_index := {
	"ad se": {"read sensitive file": "read"},
	"ad ss": {"read ssh information": "read"},
	"al sh": {"terminal shell": "shell"},
	"at re": {"netcat remote code execution": "outbound"},
	"c2 se": {"c2 server": "outbound"},
	"ct st": {"redirect stdout/stdin to network": "outbound"},
	"ed co": {"disallowed connection": "outbound", "unexpected connection": "outbound"},
	"ed di": {"monitored dir": "write"},
	"ed fi": {"monitored file read": "read"},
	"ed ne": {"unexpected network": "outbound"},
	"ed sh": {"spawned shell": "shell"},
	"ed ss": {"disallowed ssh connection": "outbound"},
	"ed ud": {"unexpected udp": "outbound"},
	"fy bi": {"modify binary": "write"},
	"ll in": {"shell in a container": "shell", "shell in container": "shell"},
	"ll sp": {"shell spawned": "shell"},
	"ll un": {"shell untrusted": "shell"},
	"nd an": {"command and control": "outbound"},
	"nd co": {"outbound connection": "outbound"},
	"nd tr": {"outbound traffic": "outbound"},
	"ng po": {"mining pool": "outbound"},
	"on to": {"connection to miner": "outbound"},
	"ow bi": {"below binary dir": "write"},
	"ow de": {"below dev": "write"},
	"ow et": {"below etc": "write"},
	"ow fi": {"shadow file": "read"},
	"ow ro": {"below root": "write"},
	"pm da": {"rpm database": "write"},
	"rk co": {"network connection to": "outbound"},
	"ry di": {"binary dirs": "write"},
	"se sh": {"reverse shell": "shell"},
	"te be": {"write below": "write"},
	"te bi": {"write binary": "write"},
	"un sh": {"run shell": "shell"},
	"ve di": {"sensitive dir": "write"},
	"ve fi": {"sensitive file": "read"},
	"ve sh": {"interactive shell": "shell"},
}

# The rule name contains one of the patterns (slow reference form: tests and custom policies).
rule_matches(patterns) if {
	some p in patterns
	contains(rule_lower, p)
}

# Categories matched on the rule name (plus a few tags that name the behaviour).
named_categories contains category if {
	spaces := indexof_n(rule_lower, " ")
	count(spaces) > 0
	index := rule_pattern_index
	some i in spaces
	i > 1
	some pattern, category in object.get(index, substring(rule_lower, i - 2, 5), {})
	contains(rule_lower, pattern)
}

named_categories contains "shell" if {
	"shell" in tags
	not object.get(string_fields, "container.id", "") in {"", "host"}
	not contains(rule_lower, "config")
	not contains(rule_lower, "history")
}

# kubectl exec / attach into a pod with a shell command (k8s_audit source).
named_categories contains "shell" if {
	contains(rule_lower, "exec")
	contains(rule_lower, "pod")
	is_shell_name(object.get(string_fields, "ka.uri.param[command]", ""))
}

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

is_sensitive_file(f) if strings.any_prefix_match(f, sensitive_file_prefixes)

is_sensitive_file(f) if contains(f, "/.ssh/id_")

under_sensitive_dir(f) if strings.any_prefix_match(f, sensitive_write_dirs)

write_flags := ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]

opened_for_write if {
	flags := string_fields["evt.arg.flags"]
	some w in write_flags
	contains(flags, w)
}

open_types := {"open", "openat", "openat2", "open_by_handle_at"}

# Field-based categories, used only when the rule name claims none (renamed or custom rules).
# Cheapest test first in each.
field_categories contains "shell" if {
	not object.get(string_fields, "container.id", "") in {"", "host"}
	has_tty
	is_shell_name(object.get(string_fields, "proc.name", ""))
}

field_categories contains "write" if {
	opened_for_write
	under_sensitive_dir(file)
}

field_categories contains "read" if {
	object.get(string_fields, "evt.type", "") in open_types
	is_sensitive_file(file)
	not opened_for_write
}

field_categories contains "outbound" if {
	object.get(string_fields, "evt.type", "") in {"connect", "sendto", "sendmsg"}
	"network" in tags
	priority_warning_or_above
}

categories := named_categories if {
	count(named_categories) > 0
} else := field_categories

# No named runtime policy claims the alert (the catch-all's case).
unclaimed if count(categories) == 0

# ---------------------------------------------------------------------------------------------
# Falco's default rules (data.tribunal.config.falco_rules, policies/data/falco_rules.json): rule
# name -> {priority, maturity, description, and either policy (the named policy that claims it)
# or controls (what falco_alert names) with an optional severity override}. A catalogued rule is
# judged whatever its priority: "Launch Privileged Container" comes at Informational.

# The catalogue entry of the alert's rule, {} when the rule is not catalogued.
# (data.tribunal.config.falco_rules itself, never data.tribunal: that would read every policy.)
default falco_rule_catalogue := {}

falco_rule_catalogue := catalogue if {
	catalogue := data.tribunal.config.falco_rules
	is_object(catalogue)
}

known_rule := object_of(object.get(falco_rule_catalogue, rule, {}))

known if count(known_rule) > 0

# The entry's severity when it is one of Tribunal's, else the alert's (by priority).
known_severity := s if {
	s := object.get(known_rule, "severity", "")
	s in {"critical", "high", "medium", "low", "info"}
} else := severity

# The entry's controls (strings), else runtime monitoring alone.
known_controls := found if {
	found := [c |
		some c in array_of(object.get(known_rule, "controls", []))
		is_string(c)
	]
	count(found) > 0
} else := ["nsa-cisa:threat-detection:runtime-monitoring"]

known_description := string_of(object.get(known_rule, "description", ""))

# Falco's own operational events (metrics snapshots, event drops) rather than detections. No
# policy exempts them: the catch-all treats them like any alert (only Warning and above count).
operational if source == "internal"

operational if startswith(rule_lower, "falco internal")

# ---------------------------------------------------------------------------------------------
# Message parts shared by the policies

# "Process 'cat'", "Command 'cat /etc/shadow'" or "A process"
actor := concat("", ["Process '", string_fields["proc.name"], "'"]) if {
	string_fields["proc.name"]
} else := concat("", ["Command '", string_fields["proc.cmdline"], "'"]) if {
	string_fields["proc.cmdline"]
} else := "A process"

# The file, or "(file not reported)"
file_label := object.get(string_fields, "fd.name", object.get(
	string_fields, "fs.path.name",
	object.get(string_fields, "fd.filename", "(file not reported)"),
))

# The rule name, or "(unnamed rule)"
rule_label := rule if {
	rule != ""
} else := "(unnamed rule)"

# ": process 'cat'", ": <cmdline>" or ""
process_suffix := concat("", [": process '", process, "'"]) if {
	process != ""
} else := concat("", [": ", cmdline]) if {
	cmdline != ""
} else := ""

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

# base_details without its empty values: what the policies merge their own (non-empty) details
# into, as details(extra) would (their keys are not base_details keys). Built from the non-empty
# strings directly rather than by filtering base_details (fewer rules to evaluate).
compact_details := object.union(object.union(alert_strings, from_fields), located) if {
	# object.get, not field_detail_keys[name]: in a comprehension regorus's RVM gives a missing key
	# the key "<undefined>" instead of skipping it.
	from_fields := {key: v |
		some name
		v := string_fields[name]
		key := object.get(field_detail_keys, name, "")
		key != ""
	}
	sorted := sort([t |
		some t in tags
	])
	candidates := {"image": image, "namespace": namespace, "pod": pod, "tags": sorted}
	located := {key: v |
		some key
		v := candidates[key]
		v != ""
		v != []
	}
}

# details key of each output field that base_details shows as it is
field_detail_keys := {
	"container.id": "container_id",
	"container.name": "container_name",
	"proc.name": "process",
	"proc.cmdline": "cmdline",
	"proc.pname": "parent",
	"user.name": "user",
}

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
where := concat("", ["container ", cid, " (", concat(", ", parts), ")"]) if {
	cid := object.get(string_fields, "container.id", "")
	not cid in {"", "host"}
	parts := where_parts
	count(parts) > 0
} else := concat("", ["container ", cid]) if {
	cid := object.get(string_fields, "container.id", "")
	not cid in {"", "host"}
} else := "the host" if {
	string_fields["container.id"] == "host"
} else := concat("", ["pod ", pod_ref]) if {
	pod != ""
} else := "unknown location"

# "image X" when the image is known, "pod ns/name" when the pod is
where_parts := [part |
	some x in [["image ", image, image], ["pod ", pod_ref, pod]]
	x[2] != ""
	part := concat("", [x[0], x[1]])
]

# namespace/pod, or the pod alone when the namespace is unknown
pod_ref := concat("/", [namespace, pod]) if {
	namespace != ""
} else := pod

# ---------------------------------------------------------------------------------------------
# Parts of single policies (rules here rather than in the policy package: see "Speed" above)

# shell_in_container: the command of a kubectl exec (k8s_audit)
exec_command := object.get(string_fields, "ka.uri.param[command]", "")

# shell_in_container: the process, else the exec command, else "shell"
shell := object.get(string_fields, "proc.name", object.get(string_fields, "ka.uri.param[command]", "shell"))

# unexpected_outbound_connection: known command-and-control destinations are worse than an
# unlisted one (severity at least high, else at least medium).
c2 if contains(rule_lower, "c2")

c2 if "c2" in tags

c2 if contains(rule_lower, "command and control")

outbound_severity := severity_at_least_high if {
	c2
} else := severity_at_least_medium

# unexpected_outbound_connection: fd.rip:fd.rport when reported, else the remote side of fd.name
# ("a:1->b:2"), else fd.name.
# (object.get and a check: see image.)
destination := concat("", [rip, ":", object.get(string_fields, "fd.rport", "")]) if {
	rip := object.get(string_fields, "fd.rip", "")
	rip != ""
} else := d if {
	parts := split(connection, "->")
	count(parts) == 2
	d := parts[1]
} else := connection if {
	connection != ""
} else := "(destination not reported)"
