package tribunal.admission.interactive_tty

import rego.v1

test_input_container_tty_stdin_not_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("shell"), {"tty": true, "stdin": true, "stdinOnce": true})
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr]})
	{v.msg | some v in results} == {"containers/shell sets tty: true", "containers/shell sets stdin: true"}
	some v in results
	v.controls == ["hygiene:interactive-containers"]
}

test_input_init_container_stdin_in_cronjob_not_allowed if {
	init := object.union(data.tribunal.lib.kubernetes.mock_good_container("init"), {"stdin": true})
	results := violations with input as data.tribunal.lib.kubernetes.mock_cronjob({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")], "initContainers": [init]})
	count(results) == 1
}

test_input_non_interactive_and_debug_container_allowed if {
	ctr := object.union(data.tribunal.lib.kubernetes.mock_good_container("app"), {"tty": false})
	debug := {"name": "debug", "image": "busybox:1.36", "tty": true, "stdin": true}
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [ctr], "ephemeralContainers": [debug]})
	count(results) == 0
}
