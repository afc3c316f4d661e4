package tribunal.lib.trivy

import rego.v1

image_report_doc := {
	"SchemaVersion": 2,
	"ArtifactName": "nginx:1.25",
	"ArtifactType": "container_image",
	"Results": [
		{
			"Target": "nginx:1.25 (debian 12.1)",
			"Class": "os-pkgs",
			"Vulnerabilities": [
				{"VulnerabilityID": "CVE-1", "PkgName": "openssl", "InstalledVersion": "3.0.1", "FixedVersion": "3.0.2", "Severity": "CRITICAL"},
				{"VulnerabilityID": "CVE-2", "PkgName": "zlib", "InstalledVersion": "1.2"},
			],
		},
		{"Target": "app/package-lock.json", "Class": "lang-pkgs", "Vulnerabilities": null},
		{"Target": "Dockerfile", "Class": "secret", "Secrets": [{"RuleID": "github-pat", "Title": "GitHub PAT", "StartLine": 3}]},
		{"Target": "Dockerfile", "Class": "config", "Misconfigurations": [
			{"ID": "DS002", "Severity": "HIGH", "Status": "FAIL"},
			{"ID": "DS001", "Severity": "LOW", "Status": "PASS"},
		]},
	],
}

k8s_report := {"ClusterName": "kind", "Resources": [{
	"Namespace": "default",
	"Kind": "Deployment",
	"Name": "web",
	"Results": [
		{"Target": "docker.io/library/nginx:1.25 (debian 12.1)", "Class": "os-pkgs", "Vulnerabilities": [{"VulnerabilityID": "CVE-3", "PkgName": "curl", "Severity": "HIGH", "FixedVersion": "8"}]},
		{"Target": "Deployment/web", "Class": "config", "Misconfigurations": [{"ID": "KSV017", "Severity": "HIGH", "Status": "FAIL"}]},
	],
}]}

legacy_k8s_report := {"ClusterName": "eks", "Vulnerabilities": [{
	"Namespace": "default",
	"Kind": "Deployment",
	"Name": "redis",
	"Results": [{"Target": "redis:7 (debian 12)", "Class": "os-pkgs", "Vulnerabilities": [{"VulnerabilityID": "CVE-4", "PkgName": "apt", "Severity": "LOW"}]}],
}]}

operator_vuln_report := {
	"apiVersion": "aquasecurity.github.io/v1alpha1",
	"kind": "VulnerabilityReport",
	"metadata": {"name": "r", "namespace": "default", "labels": {
		"trivy-operator.resource.kind": "ReplicaSet",
		"trivy-operator.resource.name": "nginx-123",
		"trivy-operator.resource.namespace": "default",
	}},
	"report": {
		"artifact": {"repository": "library/nginx", "tag": "alpine"},
		"registry": {"server": "index.docker.io"},
		"vulnerabilities": [{"vulnerabilityID": "CVE-5", "resource": "curl", "installedVersion": "1", "fixedVersion": "2", "severity": "CRITICAL", "target": ""}],
	},
}

config_audit_report := {
	"apiVersion": "aquasecurity.github.io/v1alpha1",
	"kind": "ConfigAuditReport",
	"metadata": {"name": "r", "namespace": "default"},
	"report": {"checks": [
		{"checkID": "KSV001", "severity": "CRITICAL", "success": false, "messages": ["a", "b"]},
		{"checkID": "KSV002", "severity": "CRITICAL", "success": true},
	]},
}

test_image_report_vulnerabilities_normalised if {
	vs := vulnerabilities with input as {"event": image_report_doc}
	count(vs) == 2
	some v in vs
	v.id == "CVE-1"
	v["package"] == "openssl"
	v.installed == "3.0.1"
	v.fixed == "3.0.2"
	v.severity == "critical"
	v.image == "nginx:1.25"
	v.target == "nginx:1.25 (debian 12.1)"
}

test_vulnerability_without_severity_is_info if {
	vs := vulnerabilities with input as {"event": image_report_doc}
	some v in vs
	v.id == "CVE-2"
	v.severity == "info"
	v.trivy_severity == "UNKNOWN"
	v.fixed == ""
}

test_image_report_secrets_default_high if {
	ss := secrets with input as {"event": image_report_doc}
	count(ss) == 1
	some s in ss
	s.rule_id == "github-pat"
	s.severity == "high"
	s.line == "3"
}

test_only_failed_misconfigurations if {
	ms := misconfigurations with input as {"event": image_report_doc}
	count(ms) == 1
	some m in ms
	m.id == "DS002"
}

test_k8s_report_carries_resource_and_image if {
	vs := vulnerabilities with input as {"event": k8s_report}
	some v in vs
	v.resource == "Deployment/default/web"
	v.image == "docker.io/library/nginx:1.25"
	ms := misconfigurations with input as {"event": k8s_report}
	some m in ms
	m.id == "KSV017"
	m.resource == "Deployment/default/web"
}

test_legacy_k8s_layout if {
	vs := vulnerabilities with input as {"event": legacy_k8s_report}
	some v in vs
	v.id == "CVE-4"
	v.kind == "Deployment"
	v.image == "redis:7"
}

test_operator_vulnerability_report if {
	image == "index.docker.io/library/nginx:alpine" with input as {"event": operator_vuln_report}
	vs := vulnerabilities with input as {"event": operator_vuln_report}
	some v in vs
	v.id == "CVE-5"
	v.target == "index.docker.io/library/nginx:alpine"
	v.resource == "ReplicaSet/default/nginx-123"
}

test_operator_failed_checks_only if {
	ms := misconfigurations with input as {"event": config_audit_report}
	count(ms) == 1
	some m in ms
	m.id == "KSV001"
	m.message == "a; b"
	m.severity == "critical"
}

test_untidy_documents_yield_nothing if {
	count(vulnerabilities) == 0 with input as {"event": {"SchemaVersion": 2, "ArtifactName": "x"}}
	count(vulnerabilities) == 0 with input as {"event": {"Results": null}}
	count(vulnerabilities) == 0 with input as {"event": {"Results": [null, 1, {"Vulnerabilities": [null]}]}}
	count(secrets) == 0 with input as {"event": {"kind": "ExposedSecretReport", "metadata": {}, "report": {"secrets": null}}}
	count(misconfigurations) == 0 with input as {"event": "not a report"}
	count(misconfigurations) == 0 with input as {}
}

test_image_falls_back_to_subject if {
	image == "registry/app:1" with input as {"event": {"ArtifactType": "repository"}, "subject": {"image": "registry/app:1"}}
	image == "" with input as {"event": {"ArtifactType": "repository"}, "subject": {}}
}

test_severity_of_lower_cases if {
	severity_of("HIGH") == "high"
	severity_of("UNKNOWN") == "info"
	severity_of(null) == "info"
}

# Trivy tags ArtifactName, ArtifactType, Metadata and Results `omitempty`: a report made inside the
# Trivy Operator can come without ArtifactName, and is judged all the same.
operator_made_report := {
	"SchemaVersion": 2,
	"Metadata": {"RepoTags": ["ghcr.io/acme/api:2.1"], "RepoDigests": ["ghcr.io/acme/api@sha256:abc"]},
	"Results": [{
		"Target": "ghcr.io/acme/api:2.1 (alpine 3.19)",
		"Vulnerabilities": [{"VulnerabilityID": "CVE-6", "PkgName": "musl", "FixedVersion": "1.2.5", "Severity": "HIGH"}],
	}],
}

test_report_without_artifact_name_is_read if {
	vs := vulnerabilities with input as {"event": operator_made_report}
	count(vs) == 1
	some v in vs
	v.id == "CVE-6"
	v.image == "ghcr.io/acme/api:2.1"
	v.target == "ghcr.io/acme/api:2.1 (alpine 3.19)"
}

test_image_from_repo_digests_when_no_tags if {
	doc := {"Metadata": {"RepoDigests": ["ghcr.io/acme/api@sha256:abc"]}, "Results": []}
	image == "ghcr.io/acme/api@sha256:abc" with input as {"event": doc}
	image == "" with input as {"event": {"ArtifactType": "filesystem", "Metadata": {"RepoTags": ["x:1"]}}}
}

test_findings_of_every_omitted_field_are_still_read if {
	doc := {"Results": [{
		"Vulnerabilities": [{}],
		"Secrets": [{}],
		"Misconfigurations": [{}],
	}]}
	count(vulnerability_list) == 1 with input as {"event": doc}
	count(secret_list) == 1 with input as {"event": doc}
	count(misconfiguration_list) == 1 with input as {"event": doc}
	some v in vulnerability_list with input as {"event": doc}
	v.id == ""
	v.severity == "info"
}

test_k8s_summary_report_findings if {
	doc := {"ClusterName": "kind", "Findings": [{
		"Kind": "Deployment",
		"Name": "web",
		"Results": [{"Target": "nginx:1.25 (debian 12)", "Class": "os-pkgs", "Vulnerabilities": [{"VulnerabilityID": "CVE-7", "Severity": "LOW"}]}],
	}]}
	vs := vulnerabilities with input as {"event": doc}
	some v in vs
	v.id == "CVE-7"
	v.resource == "Deployment/web"
	v.image == "nginx:1.25"
}
