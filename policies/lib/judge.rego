# METADATA
# title: Verdict aggregation
# description: |
#   Gathers the violations of every policy package `tribunal.<kind>.<policy_id>` for one piece of
#   evidence, names the policy of each, and marks the ones an exception in
#   `data.tribunal.exceptions` covers. One rule per evidence kind: rego-cpp cannot iterate
#   `data.tribunal[input.kind]`, so each kind is spelt out.
package tribunal.lib.judge

import rego.v1

admission contains decorate(pid, v) if {
	some pid, p in data.tribunal.admission
	some v in p.violations
}

falco contains decorate(pid, v) if {
	some pid, p in data.tribunal.falco
	some v in p.violations
}

trivy contains decorate(pid, v) if {
	some pid, p in data.tribunal.trivy
	some v in p.violations
}

# Without exceptions configured (the common case) skip the matching: ~4% of an admission query.
decorate(pid, v) := object.union(v, {"policy": pid, "exception": null}) if {
	count(exceptions) == 0
} else := object.union(v, {"policy": pid, "exception": first_or_null(exception_reasons(pid, v))})

# The reasons of the exceptions that cover violation v of policy pid. An exception applies when its
# policy matches (id, "*" or "prefix*") and every scope it names (namespaces, images) matches.
# (A comprehension plus first_or_null rather than `else`: regorus's compiled RVM mode drops the `else`
# branch of a function whose body calls an undefined function.)
exception_reasons(pid, v) := [reason |
	some ex in exceptions
	matches(object.get(ex, "policy", "*"), pid)
	scope_matches(object.get(ex, "namespaces", null), object.get(input, ["subject", "namespace"], ""))
	scope_matches(object.get(ex, "images", null), violation_image(v))
	reason := object.get(ex, "reason", "exception")
]

first_or_null(values) := values[0] if {
	count(values) > 0
} else := null

default exceptions := []

# Read by path, not through object.get(data, ...): rego-cpp sees that as recursion into this rule.
exceptions := data.tribunal.exceptions

violation_image(v) := v.details.image if {
	is_string(v.details.image)
} else := object.get(input, ["subject", "image"], "")

scope_matches(patterns, _) if not is_array(patterns)

scope_matches(patterns, value) if {
	is_array(patterns)
	some pattern in patterns
	matches(pattern, value)
}

matches(pattern, value) if pattern == value

matches(pattern, value) if {
	endswith(pattern, "*")
	startswith(value, trim_suffix(pattern, "*"))
}
