# Tests of the aggregation rule (judge.rego): violations of every policy package gathered and named,
# and exceptions matched by policy id, "*", "prefix*", namespaces, images and reason. Policy packages
# are replaced with `with data.tribunal.<kind> as {...}`, so these tests hold whatever the library
# holds; the last ones run the real admission library.
package tribunal.lib.judge

import rego.v1

viol(msg, details) := {"msg": msg, "severity": "high", "controls": ["pss-baseline:x"], "details": details}

# Three policies: two host_* ones and one other; the images tell the violations apart.
policies := {
	"host_ports": {"violations": {viol("port", {"image": "registry.k8s.io/kube-proxy:v1.35.0"})}},
	"host_namespaces": {"violations": {viol("pid", {})}},
	"privileged_containers": {"violations": {viol("priv", {"image": "docker.io/library/nginx:1.27"})}},
}

review(ns, image) := {"kind": "admission", "event": {}, "subject": {"namespace": ns, "image": image}, "context": {}}

# policy id -> exception (reason or null) of the judged violations
judged(exceptions, ns, image) := {v.policy: v.exception |
	some v in admission with data.tribunal.admission as policies
		with data.tribunal.exceptions as exceptions
		with input as review(ns, image)
}

none_excepted := {"host_ports": null, "host_namespaces": null, "privileged_containers": null}

# ---------------------------------------------------------------------------------------------
# Aggregation

test_every_violation_of_every_policy_is_named_with_its_policy if {
	results := admission with data.tribunal.admission as policies with input as review("shop", "")
	count(results) == 3
	{[v.policy, v.msg] | some v in results} == {["host_ports", "port"], ["host_namespaces", "pid"], ["privileged_containers", "priv"]}
	every v in results {
		v.exception == null
		v.severity == "high"
		v.controls == ["pss-baseline:x"]
	}
}

test_several_violations_of_one_policy_and_identical_ones_of_two_policies_are_all_kept if {
	same := viol("same", {"path": "spec"})
	packages := {"a": {"violations": {same, viol("other", {})}}, "b": {"violations": {same}}}
	results := admission with data.tribunal.admission as packages with input as review("", "")
	{[v.policy, v.msg] | some v in results} == {["a", "same"], ["a", "other"], ["b", "same"]}
}

test_the_package_name_wins_over_a_policy_field_the_violation_carries if {
	packages := {"real": {"violations": {object.union(viol("m", {}), {"policy": "forged", "exception": "forged"})}}}
	results := admission with data.tribunal.admission as packages with input as review("", "")
	results == {object.union(viol("m", {}), {"policy": "real", "exception": null})}
	# and so it does when exceptions are configured (the other branch of decorate)
	with_exceptions := admission with data.tribunal.admission as packages
		with data.tribunal.exceptions as [{"policy": "nothing", "reason": "r"}]
		with input as review("", "")
	with_exceptions == results
}

test_policies_without_violations_and_no_policies_give_nothing if {
	count(admission) == 0 with data.tribunal.admission as {"quiet": {"violations": set()}} with input as review("", "")
	count(admission) == 0 with data.tribunal.admission as {} with input as review("", "")
}

test_each_kind_reads_only_its_own_packages if {
	falco_pkgs := {"shell_in_container": {"violations": {viol("shell", {})}}}
	trivy_pkgs := {"exposed_secrets": {"violations": {viol("secret", {}), viol("key", {})}}}
	{v.policy | some v in falco} == {"shell_in_container"} with data.tribunal.falco as falco_pkgs
		with data.tribunal.trivy as trivy_pkgs
		with input as {"kind": "falco"}
	count(trivy) == 2 with data.tribunal.falco as falco_pkgs
		with data.tribunal.trivy as trivy_pkgs
		with input as {"kind": "trivy"}
	count(admission) == 0 with data.tribunal.admission as {}
		with data.tribunal.falco as falco_pkgs
		with input as {"kind": "admission"}
}

# ---------------------------------------------------------------------------------------------
# Exceptions: which policies

test_without_exceptions_nothing_is_excepted if {
	judged([], "kube-system", "") == none_excepted
}

test_an_exception_names_one_policy_by_its_id if {
	judged([{"policy": "host_ports", "reason": "kube-proxy"}], "shop", "") == object.union(none_excepted, {"host_ports": "kube-proxy"})
}

test_an_exception_for_another_policy_excepts_nothing if {
	judged([{"policy": "host_port", "reason": "typo"}, {"policy": "seccomp_required", "reason": "r"}], "shop", "") == none_excepted
}

test_a_star_or_a_missing_policy_covers_every_policy if {
	every ex in [{"policy": "*", "reason": "all"}, {"reason": "all"}] {
		judged([ex], "shop", "") == {"host_ports": "all", "host_namespaces": "all", "privileged_containers": "all"}
	}
}

test_a_prefix_pattern_covers_the_policies_it_starts if {
	judged([{"policy": "host_*", "reason": "node agent"}], "shop", "") == {"host_ports": "node agent", "host_namespaces": "node agent", "privileged_containers": null}
}

test_a_star_inside_a_pattern_is_literal if {
	judged([{"policy": "host*ports", "reason": "r"}, {"policy": "*_containers", "reason": "r"}], "shop", "") == none_excepted
}

# ---------------------------------------------------------------------------------------------
# Exceptions: scopes (namespaces, images), all of which must match

test_namespaces_match_literally_or_by_prefix if {
	ex := [{"policy": "*", "namespaces": ["kube-system", "monitoring-*"], "reason": "system"}]
	judged(ex, "kube-system", "") == {"host_ports": "system", "host_namespaces": "system", "privileged_containers": "system"}
	judged(ex, "monitoring-eu", "")["host_ports"] == "system"
	judged(ex, "monitoring", "") == none_excepted
	judged(ex, "kube-system-2", "") == none_excepted
	judged(ex, "shop", "") == none_excepted
}

test_an_empty_namespace_list_matches_no_namespace_and_null_matches_all if {
	judged([{"policy": "*", "namespaces": [], "reason": "r"}], "shop", "") == none_excepted
	judged([{"policy": "*", "namespaces": null, "reason": "r"}], "shop", "")["host_namespaces"] == "r"
}

test_a_namespace_scope_needs_a_namespace if {
	judged([{"policy": "*", "namespaces": ["shop"], "reason": "r"}], "", "") == none_excepted
	judged([{"policy": "*", "namespaces": ["*"], "reason": "r"}], "", "")["host_ports"] == "r"
}

test_images_match_the_violations_own_image if {
	ex := [{"policy": "*", "images": ["registry.k8s.io/*"], "reason": "k8s images"}]
	# host_ports's violation names a registry.k8s.io image; the others name another image or none
	judged(ex, "shop", "") == object.union(none_excepted, {"host_ports": "k8s images"})
	exact := [{"policy": "*", "images": ["docker.io/library/nginx:1.27"], "reason": "nginx"}]
	judged(exact, "shop", "") == object.union(none_excepted, {"privileged_containers": "nginx"})
}

test_a_violation_without_an_image_is_matched_on_the_subjects_image if {
	ex := [{"policy": "*", "images": ["ghcr.io/acme/*"], "reason": "acme"}]
	# only host_namespaces's violation has no image of its own
	judged(ex, "shop", "ghcr.io/acme/agent:2") == object.union(none_excepted, {"host_namespaces": "acme"})
	judged(ex, "shop", "") == none_excepted
}

test_a_violations_own_image_is_not_overridden_by_the_subjects if {
	ex := [{"policy": "privileged_containers", "images": ["ghcr.io/acme/*"], "reason": "acme"}]
	judged(ex, "shop", "ghcr.io/acme/agent:2") == none_excepted
}

test_every_scope_given_must_match if {
	ex := [{"policy": "host_ports", "namespaces": ["kube-system"], "images": ["registry.k8s.io/*"], "reason": "kube-proxy"}]
	judged(ex, "kube-system", "")["host_ports"] == "kube-proxy"
	judged(ex, "shop", "")["host_ports"] == null
	other_image := [{"policy": "host_ports", "namespaces": ["kube-system"], "images": ["quay.io/*"], "reason": "r"}]
	judged(other_image, "kube-system", "")["host_ports"] == null
}

# ---------------------------------------------------------------------------------------------
# Exceptions: the reason kept

test_the_reason_is_kept_and_defaults_to_exception if {
	judged([{"policy": "host_ports"}], "shop", "")["host_ports"] == "exception"
	judged([{"policy": "host_ports", "reason": "kube-proxy needs hostPort 10256"}], "shop", "")["host_ports"] == "kube-proxy needs hostPort 10256"
}

test_the_first_matching_exception_gives_the_reason if {
	ex := [
		{"policy": "privileged_containers", "namespaces": ["other"], "reason": "not this one"},
		{"policy": "privileged_*", "reason": "first match"},
		{"policy": "*", "reason": "second match"},
	]
	judged(ex, "shop", "") == {"host_ports": "second match", "host_namespaces": "second match", "privileged_containers": "first match"}
}

# An excepted violation stays in the result, whole: the decision (with each policy's enforcement,
# resolved outside Rego) skips it, the verdict still shows it with its reason.
test_an_excepted_violation_is_kept_whole_with_its_reason if {
	results := admission with data.tribunal.admission as policies
		with data.tribunal.exceptions as [{"policy": "host_ports", "reason": "kube-proxy"}]
		with input as review("shop", "")
	count(results) == 3
	some v in results
	v.policy == "host_ports"
	v == object.union(viol("port", {"image": "registry.k8s.io/kube-proxy:v1.35.0"}), {"policy": "host_ports", "exception": "kube-proxy"})
}

# The judge sets no enforcement: every violation reaches the enforcement step with its policy id
# and severity, excepted or not, and nothing else is added.
test_the_judge_adds_only_policy_and_exception if {
	results := admission with data.tribunal.admission as policies
		with data.tribunal.exceptions as [{"policy": "*", "reason": "r"}]
		with input as review("shop", "")
	every v in results {
		object.keys(v) == {"msg", "severity", "controls", "details", "policy", "exception"}
	}
}

# ---------------------------------------------------------------------------------------------
# The real admission library through the judge

privileged_pod := data.tribunal.lib.kubernetes.mock_pod({
	"hostPID": true,
	"containers": [data.tribunal.lib.kubernetes.mock_container_sc("app", {"privileged": true})],
})

test_the_library_through_the_judge if {
	results := admission with input as privileged_pod
	# (other policies of the library may fire too: the mock pod is in namespace default)
	{"privileged_containers", "host_namespaces"} - {v.policy | some v in results} == set()
	every v in results {
		v.exception == null
	}
}

test_the_library_through_the_judge_with_an_exception if {
	results := admission with input as privileged_pod
		with data.tribunal.exceptions as [{"policy": "privileged_containers", "namespaces": ["default"], "images": ["registry.example.com/*"], "reason": "CNI"}]
	excepted := {[v.policy, v.exception] |
		some v in results
		v.exception != null
	}
	excepted == {["privileged_containers", "CNI"]}
	["host_namespaces", null] in {[v.policy, v.exception] | some v in results}
}
