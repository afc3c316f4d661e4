# METADATA
# title: Trivy helpers
# description: |
#   Normalising helpers for the vulnerability policies (package tribunal.trivy.<policy_id>), over
#   one Trivy document in `input.event`, whatever its shape:
#
#   (a) `trivy image|fs|repo|rootfs|vm|sbom|config --format json` (SchemaVersion 2): ArtifactName,
#       ArtifactType, Metadata, Results[].{Target, Class, Type, Vulnerabilities[],
#       Misconfigurations[], Secrets[]};
#       `trivy k8s --format json`: ClusterName + Resources[] (Findings[] with `--report summary`)
#       .{Namespace, Kind, Name, Results[]}, or
#       the older split layout with top-level Vulnerabilities[] / Misconfigurations[] lists of
#       resources, each with Results[];
#   (b) Trivy Operator resources: VulnerabilityReport / ClusterVulnerabilityReport
#       (report.vulnerabilities[]), ConfigAuditReport / RbacAssessmentReport /
#       InfraAssessmentReport and their Cluster* forms (report.checks[]), ExposedSecretReport
#       (report.secrets[]), ClusterComplianceReport (status.detailReport.results[].checks[],
#       status.summaryReport.controlCheck[]); report.artifact + report.registry name the image.
#
#   Every list may be missing or null and every field may be missing (Trivy's Go types tag nearly
#   every field `omitempty`, ArtifactName included): nothing here errors, it just
#   yields nothing. The sets (objects with string values, "" when unknown), each also available as
#   a list (vulnerability_list, secret_list, misconfiguration_list: faster, see below):
#   - vulnerabilities (read `package` as v["package"]: it is a keyword): id, package, installed, fixed, severity (critical|high|medium|low|info),
#     trivy_severity (as Trivy wrote it, upper case, UNKNOWN when missing), title, url, path,
#     target, image, resource ("Kind/namespace/name" or ""), kind, namespace, name
#   - secrets: rule_id, category, title, match, line, severity (default high), trivy_severity,
#     target, image, resource, kind, namespace, name
#   - misconfigurations (failed checks only): id, title, message, resolution, url, severity,
#     trivy_severity, target, type, image, resource, kind, namespace, name
#   - image: the scanned image (ArtifactName of a container image report, registry/repository:tag
#     of an operator report, else input.subject.image, else "").
#
#   Control ids used by the vulnerability policies (framework catalogue authors: reuse these):
#
#   nsa-cisa:supply-chain:image-scanning           fixable CVEs, exposed secrets
#   nsa-cisa:upgrading:patch-management            fixable CVEs (apply available fixes)
#   nsa-cisa:upgrading:configuration-scanning      failed misconfiguration checks
#   nsa-cisa:network-separation:secrets            exposed secrets (not CIS 5.4.1, Secrets as files rather
#                                                  than environment variables: admission's secret_env)
#   cis-k8s:5.5.1                                  image provenance (fixable CVEs)
#   cis-k8s:5.7.3                                  security context applied (misconfigurations)
#
#   Engine notes (measured on regorus and regopy/rego-cpp):
#   - regorus errors on iterating null: every iteration goes through array_of / object_of.
#   - rego-cpp rejects one-line `[x | a; b]` comprehensions and `some k, v in` inside a
#     comprehension: neither is used.
#   - rego-cpp's sprintf("%s") wraps some strings in quotes (those made by concat, empty
#     defaults): strings are joined with concat, never sprintf.
#   - rego-cpp's sort(set) returns a set, which cannot be indexed: sort arrays only.
#   - rego-cpp crashes (std::out_of_range) when two packages define functions of one name with
#     different arities (kubernetes.image_name/1 against a trivy image_name/2): names here are
#     kept distinct from the other libraries'.
#   - `package` is a keyword: read the field as v["package"], not v.package.
#   - regorus fails ("statements not scheduled") on a comprehension in the head of a rule that
#     has a body: such comprehensions get a rule of their own.
#   - regorus cannot call a function through an import alias (rules are fine): policies call
#     these functions by their full path, data.tribunal.lib.trivy.f(x).
#   - Big reports: every rule here is one pass over the findings; nothing is quadratic.
#   - Policies read these rules by their full path (data.tribunal.lib.trivy.x), never through an
#     import alias: regorus evaluates the whole aliased package, every rule in it, on first use.
package tribunal.lib.trivy

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

# A field of an object as a string ("" when missing, null or not a string; numbers formatted).
str(obj, key) := v if {
	v := obj[key]
	is_string(v)
} else := v if {
	x := obj[key]
	is_number(x)
	v := format_int(x, 10)
} else := ""

# s cut to n characters (secret matches can be whole private keys, masked).
shorten(s, n) := concat("", [substring(s, 0, n), "..."]) if {
	count(s) > n
} else := s

# An object without its empty-string and null values.
compact(obj) := {k: v |
	some k
	v := obj[k]
	v != ""
	v != null
}

# ---------------------------------------------------------------------------------------------
# Severity

severities := {"critical", "high", "medium", "low"}

# Trivy severity -> Tribunal severity (UNKNOWN, NONE, missing -> info).
severity_of(s) := l if {
	is_string(s)
	l := lower(s)
	l in severities
} else := "info"

# Trivy severity as written, upper case; UNKNOWN when missing.
trivy_severity_of(s) := upper(s) if {
	is_string(s)
	s != ""
} else := "UNKNOWN"

# ---------------------------------------------------------------------------------------------
# The document

default doc := {}

doc := d if {
	d := input.event
	is_object(d)
}

# Trivy Operator resource (apiVersion aquasecurity.github.io/..., kind, metadata, report|status)
is_operator if {
	is_string(doc.kind)
	is_object(doc.metadata)
}

operator_kind := string_of(object.get(doc, "kind", ""))

report := object_of(object.get(doc, "report", {}))

labels := object_of(object.get(object_of(object.get(doc, "metadata", {})), "labels", {}))

# The workload an operator report is about (from its trivy-operator.* labels).
operator_resource := {
	"kind": str(labels, "trivy-operator.resource.kind"),
	"namespace": ns,
	"name": str(labels, "trivy-operator.resource.name"),
	"container": str(labels, "trivy-operator.container.name"),
} if {
	ns := operator_namespace
}

operator_namespace := ns if {
	ns := str(labels, "trivy-operator.resource.namespace")
	ns != ""
} else := str(object_of(object.get(doc, "metadata", {})), "namespace")

# ---------------------------------------------------------------------------------------------
# The image

operator_image := img if {
	artifact := object_of(object.get(report, "artifact", {}))
	repo := str(artifact, "repository")
	repo != ""
	server := str(object_of(object.get(report, "registry", {})), "server")
	name := registry_image(server, repo)
	img := with_tag(name, str(artifact, "tag"), str(artifact, "digest"))
} else := ""

registry_image(server, repo) := repo if {
	server == ""
} else := concat("/", [server, repo])

with_tag(name, tag, _) := concat(":", [name, tag]) if {
	tag != ""
}

with_tag(name, tag, digest) := concat("@", [name, digest]) if {
	tag == ""
	digest != ""
}

with_tag(name, "", "") := name

# ArtifactName of a container image report (trivy image). Trivy writes ArtifactName, ArtifactType
# and Metadata only when they are non-empty (`omitempty`): without an ArtifactName (as in reports
# made inside the Trivy Operator), the image is the first of Metadata.RepoTags, else of
# Metadata.RepoDigests, when the report is of a container image or says nothing of its type.
artifact_image := name if {
	str(doc, "ArtifactType") == "container_image"
	name := str(doc, "ArtifactName")
	name != ""
} else := name if {
	str(doc, "ArtifactName") == ""
	str(doc, "ArtifactType") in {"container_image", ""}
	name := report_metadata_first("RepoTags")
	name != ""
} else := name if {
	str(doc, "ArtifactName") == ""
	str(doc, "ArtifactType") in {"container_image", ""}
	name := report_metadata_first("RepoDigests")
	name != ""
} else := ""

report_metadata := object_of(object.get(doc, "Metadata", {}))

# The first non-empty string of a list in Metadata (RepoTags, RepoDigests), "" when there is none.
report_metadata_first(key) := first if {
	names := [n |
		some n in array_of(object.get(report_metadata, key, []))
		is_string(n)
		n != ""
	]
	count(names) > 0
	first := names[0]
} else := ""

subject_image := string_of(object.get(input, ["subject", "image"], ""))

image := operator_image if {
	operator_image != ""
} else := artifact_image if {
	artifact_image != ""
} else := subject_image

# The image of a `trivy k8s` resource: the Target of its OS-package result, less " (os version)".
resource_image(res) := img if {
	imgs := [i |
		some r in array_of(object.get(res, "Results", []))
		is_object(r)
		str(r, "Class") == "os-pkgs"
		i := image_from_target(str(r, "Target"))
		i != ""
	]
	count(imgs) > 0
	img := imgs[0]
} else := image

image_from_target(t) := substring(t, 0, i) if {
	i := indexof(t, " (")
	i > 0
} else := t

# ---------------------------------------------------------------------------------------------
# JSON report results (every shape), each with its resource and image

resource_info(res) := {
	"kind": str(res, "Kind"),
	"namespace": str(res, "Namespace"),
	"name": str(res, "Name"),
}

no_resource := {"kind": "", "namespace": "", "name": ""}

# "Kind/namespace/name", "Kind/name" or ""
resource_ref(info) := "" if {
	info.kind == ""
	info.name == ""
} else := concat("/", [info.kind, info.name]) if {
	info.namespace == ""
} else := concat("/", [info.kind, info.namespace, info.name])

top_entries := [e |
	some r in array_of(object.get(doc, "Results", []))
	is_object(r)
	e := {"result": r, "resource": no_resource, "resource_fields": no_resource_fields, "image": image}
]

# what with_resource(obj, info) adds, per resource (computed once, not once per finding)
resource_fields(info) := {
	"resource": resource_ref(info),
	"kind": info.kind,
	"namespace": info.namespace,
	"name": info.name,
}

no_resource_fields := {"resource": "", "kind": "", "namespace": "", "name": ""}

# Resources, or Findings (`trivy k8s --report summary`: the same resources, consolidated).
resource_entries := [e |
	some key in ["Resources", "Findings"]
	some res in array_of(object.get(doc, key, []))
	is_object(res)
	img := resource_image(res)
	info := resource_info(res)
	fields := resource_fields(info)
	some r in array_of(object.get(res, "Results", []))
	is_object(r)
	e := {"result": r, "resource": info, "resource_fields": fields, "image": img}
]

# The older `trivy k8s` layout: top-level Vulnerabilities / Misconfigurations lists of resources.
legacy_entries := [e |
	not is_operator
	some key in ["Vulnerabilities", "Misconfigurations"]
	some res in array_of(object.get(doc, key, []))
	is_object(res)
	img := resource_image(res)
	info := resource_info(res)
	fields := resource_fields(info)
	some r in array_of(object.get(res, "Results", []))
	is_object(r)
	e := {"result": r, "resource": info, "resource_fields": fields, "image": img}
]

result_entries := array.concat(array.concat(top_entries, resource_entries), legacy_entries)

with_resource(obj, info) := object.union(obj, {
	"resource": resource_ref(info),
	"kind": info.kind,
	"namespace": info.namespace,
	"name": info.name,
})

# ---------------------------------------------------------------------------------------------
# Findings: each kind both as a list (what the policies iterate: cheap on every engine, may hold
# duplicates) and as a set (duplicates dropped). rego-cpp inserts objects into a set in quadratic
# time (a 634-vulnerability report: 6 s as a set, 0.6 s as a list), so policies use the lists.

vulnerability_list := array.concat(json_vulnerabilities, operator_vulnerabilities)

vulnerabilities := {v |
	some v in vulnerability_list
}

secret_list := array.concat(json_secrets, operator_secrets)

secrets := {s |
	some s in secret_list
}

misconfiguration_list := array.concat(
	array.concat(json_misconfigurations, operator_failed_checks),
	array.concat(compliance_failed_checks, compliance_failed_controls),
)

misconfigurations := {m |
	some m in misconfiguration_list
}

# ---------------------------------------------------------------------------------------------
# Vulnerabilities

json_vulnerabilities := [v |
	some e in result_entries
	some x in array_of(object.get(e.result, "Vulnerabilities", []))
	is_object(x)
	v := object.union(
		{
			"id": str(x, "VulnerabilityID"),
			"package": str(x, "PkgName"),
			"installed": str(x, "InstalledVersion"),
			"fixed": str(x, "FixedVersion"),
			"severity": severity_of(object.get(x, "Severity", "")),
			"trivy_severity": trivy_severity_of(object.get(x, "Severity", "")),
			"title": str(x, "Title"),
			"url": str(x, "PrimaryURL"),
			"path": str(x, "PkgPath"),
			"target": str(e.result, "Target"),
			"image": e.image,
		},
		e.resource_fields,
	)
]

operator_vulnerabilities := [v |
	some x in array_of(object.get(report, "vulnerabilities", []))
	is_object(x)
	v := with_resource(
		{
			"id": str(x, "vulnerabilityID"),
			"package": str(x, "resource"),
			"installed": str(x, "installedVersion"),
			"fixed": str(x, "fixedVersion"),
			"severity": severity_of(object.get(x, "severity", "")),
			"trivy_severity": trivy_severity_of(object.get(x, "severity", "")),
			"title": str(x, "title"),
			"url": str(x, "primaryLink"),
			"path": str(x, "pkgPath"),
			"target": operator_target(str(x, "target")),
			"image": image,
		},
		operator_resource,
	)
]

# Operator findings mostly carry an empty target: the image is the target then.
operator_target(t) := t if {
	t != ""
} else := image

# ---------------------------------------------------------------------------------------------
# Secrets

# Secret findings without a severity are treated as high.
secret_severity(s) := severity_of(s) if {
	is_string(s)
	lower(s) in severities
} else := "high"

json_secrets := [s |
	some e in result_entries
	some x in array_of(object.get(e.result, "Secrets", []))
	is_object(x)
	s := object.union(
		{
			"rule_id": secret_rule_id(x),
			"category": str(x, "Category"),
			"title": str(x, "Title"),
			"match": shorten(str(x, "Match"), 200),
			"line": str(x, "StartLine"),
			"severity": secret_severity(object.get(x, "Severity", "")),
			"trivy_severity": trivy_severity_of(object.get(x, "Severity", "")),
			"target": str(e.result, "Target"),
			"image": e.image,
		},
		e.resource_fields,
	)
]

operator_secrets := [s |
	some x in array_of(object.get(report, "secrets", []))
	is_object(x)
	s := with_resource(
		{
			"rule_id": str(x, "ruleID"),
			"category": str(x, "category"),
			"title": str(x, "title"),
			"match": shorten(str(x, "match"), 200),
			"line": "",
			"severity": secret_severity(object.get(x, "severity", "")),
			"trivy_severity": trivy_severity_of(object.get(x, "severity", "")),
			"target": operator_target(str(x, "target")),
			"image": image,
		},
		operator_resource,
	)
]

secret_rule_id(x) := id if {
	id := str(x, "RuleID")
	id != ""
} else := str(x, "VulnerabilityID")

# ---------------------------------------------------------------------------------------------
# Misconfigurations (failed checks only)

# Trivy JSON: Status FAIL (or no Status: only failures are listed by default).
misconfiguration_failed(x) if str(x, "Status") == "FAIL"

misconfiguration_failed(x) if not x.Status

# Operator checks: success false (or missing).
check_failed(x) if x.success == false

check_failed(x) if not "success" in object.keys(x)

json_misconfigurations := [m |
	some e in result_entries
	some x in array_of(object.get(e.result, "Misconfigurations", []))
	is_object(x)
	misconfiguration_failed(x)
	m := object.union(
		{
			"id": misconfiguration_id(x),
			"title": str(x, "Title"),
			"message": str(x, "Message"),
			"resolution": str(x, "Resolution"),
			"url": str(x, "PrimaryURL"),
			"severity": severity_of(object.get(x, "Severity", "")),
			"trivy_severity": trivy_severity_of(object.get(x, "Severity", "")),
			"target": str(e.result, "Target"),
			"type": str(e.result, "Type"),
			"image": e.image,
		},
		e.resource_fields,
	)
]

misconfiguration_id(x) := id if {
	id := str(x, "ID")
	id != ""
} else := str(x, "AVDID")

# ConfigAuditReport, RbacAssessmentReport, InfraAssessmentReport (and Cluster* forms)
operator_failed_checks := [m |
	some x in array_of(object.get(report, "checks", []))
	is_object(x)
	check_failed(x)
	m := check_finding(x, str(x, "severity"), operator_resource)
]

# ClusterComplianceReport, detailed form: a check without a severity takes its control's.
compliance_failed_checks := [m |
	status := object_of(object.get(doc, "status", {}))
	detail := object_of(object.get(status, "detailReport", {}))
	some control in array_of(object.get(detail, "results", []))
	is_object(control)
	some x in array_of(object.get(control, "checks", []))
	is_object(x)
	check_failed(x)
	sev := first_non_empty(str(x, "severity"), str(control, "severity"))
	m := object.union(check_finding(x, sev, no_resource), {"control": str(control, "id")})
]

# ClusterComplianceReport, summary form: controls with failures.
compliance_failed_controls := [m |
	status := object_of(object.get(doc, "status", {}))
	summary := object_of(object.get(status, "summaryReport", {}))
	some control in array_of(object.get(summary, "controlCheck", []))
	is_object(control)
	fails := object.get(control, "totalFail", 0)
	is_number(fails)
	fails > 0
	m := with_resource(
		{
			"id": str(control, "id"),
			"title": str(control, "name"),
			"message": concat("", [format_int(fails, 10), " failed checks"]),
			"resolution": "",
			"url": "",
			"severity": severity_of(object.get(control, "severity", "")),
			"trivy_severity": trivy_severity_of(object.get(control, "severity", "")),
			"target": "",
			"type": "compliance",
			"image": "",
			"control": str(control, "id"),
		},
		no_resource,
	)
]

check_finding(x, sev, info) := with_resource(
	{
		"id": str(x, "checkID"),
		"title": str(x, "title"),
		"message": concat("; ", strings_in(object.get(x, "messages", []))),
		"resolution": str(x, "remediation"),
		"url": "",
		"severity": severity_of(sev),
		"trivy_severity": trivy_severity_of(sev),
		"target": check_target(x),
		"type": str(x, "category"),
		"image": "",
		"scope": str(object_of(object.get(x, "scope", {})), "value"),
	},
	info,
)

check_target(x) := t if {
	t := str(x, "target")
	t != ""
} else := t if {
	operator_resource.name != ""
	t := concat("/", [operator_resource.kind, operator_resource.name])
} else := ""

strings_in(xs) := [s |
	some s in array_of(xs)
	is_string(s)
]

first_non_empty(a, b) := a if {
	a != ""
} else := b
