package tribunal.falco.falco_alert

import rego.v1

falco_input(rule, prio, source) := {
	"kind": "falco",
	"event": {
		"rule": rule,
		"priority": prio,
		"source": source,
		"output_fields": {"container.id": "1232fb36c811", "proc.name": "sh"},
	},
	"subject": {},
	"context": {},
}

test_unclaimed_critical_alert_violates if {
	vs := violations with input as falco_input("Detect release_agent File Container Escapes", "Critical", "syscall")
	count(vs) == 1
	some v in vs
	v.severity == "critical"
	contains(v.msg, "Detect release_agent File Container Escapes")
	v.details.rule == "Detect release_agent File Container Escapes"
}

test_unclaimed_warning_alert_is_medium if {
	vs := violations with input as falco_input("Remove Bulk Data from Disk", "Warning", "syscall")
	some v in vs
	v.severity == "medium"
}

test_notice_alert_is_compliant if {
	count(violations) == 0 with input as falco_input("GCP WAF rule modified or deleted", "Notice", "gcp_auditlog")
}

test_internal_metrics_snapshot_is_compliant if {
	count(violations) == 0 with input as falco_input("Falco internal: metrics snapshot", "Informational", "internal")
}

test_alert_claimed_by_named_policy_is_not_duplicated if {
	count(violations) == 0 with input as falco_input("Read sensitive file untrusted", "Warning", "syscall")
}

test_alert_without_rule_or_fields_does_not_error if {
	vs := violations with input as {"kind": "falco", "event": {"priority": "Error"}}
	some v in vs
	v.severity == "high"
	contains(v.msg, "(unnamed rule)")
}

# Falco's default rules by name (data.tribunal.config.falco_rules, policies/data/falco_rules.json).
# The tests name entries as the catalogue has them (`opa test policies` loads data files under
# data.data, so they are given with `with`); tests/unit/policy/test_falco_rules.py holds the real
# catalogue to what it says.
catalogue := {
	"Launch Privileged Container": {
		"priority": "Informational",
		"maturity": "incubating",
		"description": "A privileged container started.",
		"controls": ["nsa-cisa:threat-detection:runtime-monitoring", "cis-k8s:5.2.2", "nsa-cisa:pod-security:privileged"],
		"severity": "high",
	},
	"Contact K8S API Server From Container": {
		"priority": "Notice",
		"maturity": "stable",
		"description": "A container not known to need it connected to the Kubernetes API server.",
		"controls": ["nsa-cisa:threat-detection:runtime-monitoring"],
	},
	"Terminal shell in container": {"priority": "Notice", "maturity": "stable", "policy": "shell_in_container"},
}

test_known_informational_rule_violates_with_its_controls if {
	vs := violations with input as falco_input("Launch Privileged Container", "Informational", "syscall")
		with data.tribunal.config.falco_rules as catalogue
	count(vs) == 1
	some v in vs
	v.severity == "high"
	"cis-k8s:5.2.2" in v.controls
	"nsa-cisa:pod-security:privileged" in v.controls
	"nsa-cisa:threat-detection:runtime-monitoring" in v.controls
	v.details.description == "A privileged container started."
}

test_known_notice_rule_keeps_its_priority_severity_without_override if {
	vs := violations with input as falco_input("Contact K8S API Server From Container", "Notice", "syscall")
		with data.tribunal.config.falco_rules as catalogue
	count(vs) == 1
	some v in vs
	v.severity == "low"
	v.controls == ["nsa-cisa:threat-detection:runtime-monitoring"]
}

test_known_rule_claimed_by_a_named_policy_is_left_to_it if {
	count(violations) == 0 with input as falco_input("Terminal shell in container", "Notice", "syscall")
		with data.tribunal.config.falco_rules as catalogue
}

test_unknown_rule_is_judged_by_priority if {
	vs := violations with input as falco_input("My team's custom rule", "Error", "syscall")
		with data.tribunal.config.falco_rules as catalogue
	count(vs) == 1
	some v in vs
	v.severity == "high"
	v.controls == ["nsa-cisa:threat-detection:runtime-monitoring"]
	not v.details.description
	count(violations) == 0 with input as falco_input("My team's custom rule", "Notice", "syscall")
		with data.tribunal.config.falco_rules as catalogue
}

test_without_a_catalogue_every_rule_is_judged_by_priority if {
	count(violations) == 0 with input as falco_input("Launch Privileged Container", "Informational", "syscall")
		with data.tribunal.config.falco_rules as {}
	vs := violations with input as falco_input("Launch Privileged Container", "Warning", "syscall")
		with data.tribunal.config.falco_rules as {}
	some v in vs
	v.severity == "medium"
	v.controls == ["nsa-cisa:threat-detection:runtime-monitoring"]
}
