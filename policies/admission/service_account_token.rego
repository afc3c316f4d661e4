# METADATA
# title: Service account token automount
# description: Pod specs must set automountServiceAccountToken to false, and so must ServiceAccounts; a workload that calls the Kubernetes API mounts its token by an exception or a projected volume.
# custom:
#   id: service_account_token
#   version: 1.0.0
#   severity: medium
#   enforcement: dryrun
#   profile: hardening
#   controls: ["cis-k8s:5.1.6", "nsa-cisa:pod-security:service-account-tokens"]
package tribunal.admission.service_account_token

import rego.v1

# Trivy KSV036, stricter: Trivy fails an explicit true (or a mount of the token path); here anything
# but an explicit false, because an unset field mounts the token unless the ServiceAccount says false,
# which the review of a pod does not show. Mounting the token path by hand is left to volume_types.
violations contains v if {
	some ps in data.tribunal.lib.kubernetes.pod_specs
	value := object.get(ps.spec, "automountServiceAccountToken", null)
	value != false
	what := object.get({"true": "sets automountServiceAccountToken: true"}, json.marshal(value), "does not set automountServiceAccountToken: false")
	v := data.tribunal.lib.kubernetes.pod_violation(ps, "automountServiceAccountToken", concat("", ["pod spec ", what]), "medium", ["cis-k8s:5.1.6", "nsa-cisa:pod-security:service-account-tokens"], {"value": value})
}

# The ServiceAccount object itself (when the webhook receives serviceaccounts).
violations contains v if {
	input.event.request.object.kind == "ServiceAccount"
	value := object.get(input.event.request.object, "automountServiceAccountToken", null)
	value != false
	name := data.tribunal.lib.kubernetes.object_name
	what := object.get({"true": "sets automountServiceAccountToken: true"}, json.marshal(value), "does not set automountServiceAccountToken: false")
	v := {
		"msg": concat("", ["ServiceAccount ", name, " ", what]),
		"severity": "medium",
		"controls": ["cis-k8s:5.1.6", "nsa-cisa:pod-security:service-account-tokens"],
		"details": {"path": "automountServiceAccountToken", "value": value, "service_account": name},
	}
}
