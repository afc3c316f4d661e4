# METADATA
# title: User and group ID ranges
# description: The UIDs and GIDs a pod spec sets (runAsUser, runAsGroup, fsGroup, supplementalGroups) must lie within data.tribunal.config.id_ranges (default 10001 and above, clear of the IDs of the node's own users); with data.tribunal.config.id_ranges_required, every container must also have a runAsUser and runAsGroup.
# custom:
#   id: id_ranges
#   version: 1.0.0
#   severity: low
#   enforcement: warn
#   profile: hardening
#   controls: ["cis-k8s:5.7.3"]
package tribunal.admission.id_ranges

import rego.v1

# Trivy KSV020 (runAsUser > 10000) and KSV021 (runAsGroup > 10000), extended to fsGroup and
# supplementalGroups. ID 0 is left to run_as_root_user and root_group. A field with no range in the
# configuration is not checked.
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	some field in ["runAsUser", "runAsGroup", "fsGroup", "supplementalGroups"]
	value := object.get(ps.spec, ["securityContext", field], null)
	some id in object.get({"array": value, "number": [value]}, type_name(value), [])
	is_number(id)
	id != 0
	range := data.tribunal.config.id_ranges[field]
	is_object(range)
	lo := object.get(range, "min", 0)
	hi := object.get(range, "max", 2147483647)
	is_number(lo)
	is_number(hi)
	not within(id, lo, hi)
	v := data.tribunal.lib.kubernetes.pod_violation(ps, concat("", ["securityContext.", field]), concat("", ["pod ", field, " ", format_int(id, 10), " is outside ", span(lo, hi)]), "low", ["cis-k8s:5.7.3"], {"id": id, "min": lo, "max": hi})
}

violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	some field in ["runAsUser", "runAsGroup"]
	id := c.container.securityContext[field]
	is_number(id)
	id != 0
	range := data.tribunal.config.id_ranges[field]
	is_object(range)
	lo := object.get(range, "min", 0)
	hi := object.get(range, "max", 2147483647)
	is_number(lo)
	is_number(hi)
	not within(id, lo, hi)
	v := {
		"msg": concat("", [c.ref, " ", field, " ", format_int(id, 10), " is outside ", span(lo, hi)]),
		"severity": "low",
		"controls": ["cis-k8s:5.7.3"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": concat("", ["securityContext.", field]), "id": id, "min": lo, "max": hi},
	}
}

# id_ranges_required: a container that sets no runAsUser (or runAsGroup) and whose pod sets none
# either runs as its image says (Windows pods are exempt).
violations contains v if {
	data.tribunal.config.id_ranges_required == true
	some c in data.tribunal.lib.kubernetes.containers
	not c.pod.windows
	some field in ["runAsUser", "runAsGroup"]
	object.get(c.container, ["securityContext", field], null) == null
	object.get(c.pod.spec, ["securityContext", field], null) == null
	v := {
		"msg": concat("", [c.ref, " sets no ", field, " (nor does its pod)"]),
		"severity": "low",
		"controls": ["cis-k8s:5.7.3"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": concat("", ["securityContext.", field])},
	}
}

within(id, lo, hi) if {
	id >= lo
	id <= hi
}

span(lo, hi) := concat("", ["[", format_int(lo, 10), ", ", format_int(hi, 10), "]"])
