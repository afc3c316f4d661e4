package tribunal.admission.system_namespace

import rego.v1

in_namespace(inp, ns) := object.union(inp, {"event": {"request": {"namespace": ns}}})

test_input_pod_in_kube_system_not_allowed if {
	base := data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	results := violations with input as in_namespace(base, "kube-system") with data.tribunal.config.system_namespaces as ["kube-system"]
	count(results) == 1
	some v in results
	v.msg == "Pod p is in the system namespace kube-system"
	v.controls == ["nsa-cisa:network-separation:namespaces"]
}

test_input_configured_system_namespace_not_allowed if {
	base := data.tribunal.lib.kubernetes.mock_deployment({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	results := violations with input as in_namespace(base, "kube-public") with data.tribunal.config.system_namespaces as ["kube-system", "kube-public"]
	count(results) == 1
}

test_input_pod_in_app_namespace_allowed if {
	base := data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	results := violations with input as in_namespace(base, "shop") with data.tribunal.config.system_namespaces as ["kube-system"]
	count(results) == 0
}

test_input_service_account_in_kube_system_allowed if {
	sa := {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}}
	results := violations with input as in_namespace(data.tribunal.lib.kubernetes.mock_input(sa), "kube-system") with data.tribunal.config.system_namespaces as ["kube-system"]
	count(results) == 0
}
