package tribunal.admission.secret_env

import rego.v1

secret_var := {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}

test_env_from_secret_key_violates if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"env": [{"name": "MODE", "value": "prod"}, secret_var]})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	count(results) == 1
	some v in results
	v.msg == "containers/app reads Secret db into environment variable DB_PASSWORD (mount it as a file instead)"
	v.details.path == "spec.containers[0].env[1]"
	v.details.secret == "db"
	v.controls == ["cis-k8s:5.4.1"]
	v.severity == "medium"
}

test_env_from_whole_secret_in_deployment_init_container_violates if {
	init := object.union(data.tribunal.lib.kubernetes.mock_good_container("init"), {"envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "api-keys"}}]})
	results := violations with input as data.tribunal.lib.kubernetes.mock_deployment({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "initContainers": [init]})
	count(results) == 1
	some v in results
	v.details.path == "spec.template.spec.initContainers[0].envFrom[1]"
	contains(v.msg, "Secret api-keys")
}

test_secret_in_cronjob_template_violates if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("job"), {"env": [secret_var]})
	count(violations) == 1 with input as data.tribunal.lib.kubernetes.mock_cronjob({"containers": [ctr]})
}

test_secret_mounted_as_file_and_config_map_env_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {
		"env": [{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
		"envFrom": [{"configMapRef": {"name": "cfg"}}],
		"volumeMounts": [{"name": "db", "mountPath": "/etc/db", "readOnly": true}],
	})
	spec := {"containers": [ctr], "volumes": [{"name": "db", "secret": {"secretName": "db"}}]}
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod(spec)
}

test_malformed_env_lists_do_not_error if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"env": "x", "envFrom": [null, 1, {"secretRef": "x"}]})
	count(violations) == 0 with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
}
