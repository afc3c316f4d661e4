# METADATA
# title: Host probes and lifecycle hooks
# description: Probes and lifecycle handlers must not set a host (httpGet.host, tcpSocket.host unset or empty) (PSS baseline since Kubernetes 1.34).
# custom:
#   id: probe_host
#   version: 1.0.0
#   severity: high
#   enforcement: deny
#   profile: pss-baseline
#   controls: ["pss-baseline:host-probes-lifecycle-hooks"]
package tribunal.admission.probe_host

import rego.v1

# The kubelet sends probes and lifecycle hooks from the node: a host there points it at any address
# the node can reach. Pod Security Admission's hostProbesAndHostLifecycle check looks at the same ten
# fields of every container, init container and ephemeral container. (A literal list of full paths:
# no path is built per container.)
violations contains v if {
	some c in data.tribunal.lib.kubernetes.containers
	some p in [
		["livenessProbe", "httpGet", "host"], ["livenessProbe", "tcpSocket", "host"],
		["readinessProbe", "httpGet", "host"], ["readinessProbe", "tcpSocket", "host"],
		["startupProbe", "httpGet", "host"], ["startupProbe", "tcpSocket", "host"],
		["lifecycle", "postStart", "httpGet", "host"], ["lifecycle", "postStart", "tcpSocket", "host"],
		["lifecycle", "preStop", "httpGet", "host"], ["lifecycle", "preStop", "tcpSocket", "host"],
	]
	host := object.get(c.container, p, "")
	host != ""
	host != null
	field := concat(".", p)
	v := {
		"msg": concat("", [c.ref, " ", field, " is ", data.tribunal.lib.kubernetes.text(host), " (must be unset or empty)"]),
		"severity": "high",
		"controls": ["pss-baseline:host-probes-lifecycle-hooks"],
		"details": {"container": c.name, "image": c.image, "path": c.path, "field": field, "host": host},
	}
}
