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
