# METADATA
# title: Secrets as environment variables
# description: Containers should read Secrets from files (a secret volume) rather than from environment variables (env[].valueFrom.secretKeyRef, envFrom[].secretRef), where any process of the container, a crash dump or a log line can read them (CIS 5.4.1). Ephemeral containers are judged too.
# custom:
#   id: secret_env
#   version: 1.0.0
#   severity: medium
#   enforcement: warn
#   profile: hygiene
#   controls: ["cis-k8s:5.4.1"]
package tribunal.admission.secret_env

import rego.v1

# One violation per environment variable taken from a Secret key.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	env := object.get(c.container, "env", [])
	some i
	var := object.get({"array": env}, type_name(env), [])[i]
	is_object(var)
	ref := object.get(var, ["valueFrom", "secretKeyRef"], null)
	is_object(ref)
	name := data.tribunal.lib.kubernetes.text(object.get(var, "name", ""))
	secret := data.tribunal.lib.kubernetes.text(object.get(ref, "name", ""))
	v := {
		"msg": concat("", [c.ref, " reads Secret ", secret, " into environment variable ", name, " (mount it as a file instead)"]),
		"severity": "medium",
		"controls": ["cis-k8s:5.4.1"],
		"details": {"container": c.name, "image": c.image, "path": concat("", [c.path, ".env[", format_int(i, 10), "]"]), "secret": secret, "variable": name},
	}
}

# One violation per whole Secret imported as environment variables.
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	env_from := object.get(c.container, "envFrom", [])
	some i
	source := object.get({"array": env_from}, type_name(env_from), [])[i]
	is_object(source)
	ref := object.get(source, "secretRef", null)
	is_object(ref)
	secret := data.tribunal.lib.kubernetes.text(object.get(ref, "name", ""))
	v := {
		"msg": concat("", [c.ref, " imports every key of Secret ", secret, " as environment variables (mount it as a file instead)"]),
		"severity": "medium",
		"controls": ["cis-k8s:5.4.1"],
		"details": {"container": c.name, "image": c.image, "path": concat("", [c.path, ".envFrom[", format_int(i, 10), "]"]), "secret": secret},
	}
}
