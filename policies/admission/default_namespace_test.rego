package tribunal.admission.default_namespace

import rego.v1

test_input_pod_in_default_namespace_not_allowed if {
	results := violations with input as data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	count(results) == 1
	some v in results
	v.msg == "Pod p is in the default namespace"
	v.controls == ["cis-k8s:5.7.4", "nsa-cisa:network-separation:namespaces"]
}

test_input_deployment_namespace_from_metadata_not_allowed if {
	base := data.tribunal.lib.kubernetes.mock_deployment({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	obj := object.union(base.event.request.object, {"metadata": {"name": "d", "namespace": "default"}})
	inp := object.union(base, {"event": {"request": {"namespace": "", "object": obj}}})
	results := violations with input as inp
	count(results) == 1
}

test_input_pod_in_own_namespace_allowed if {
	base := data.tribunal.lib.kubernetes.mock_pod({"containers": [data.tribunal.lib.kubernetes.mock_good_container("app")]})
	results := violations with input as object.union(base, {"event": {"request": {"namespace": "shop"}}})
	count(results) == 0
}

test_input_non_workload_in_default_namespace_allowed if {
	cm := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
	results := violations with input as data.tribunal.lib.kubernetes.mock_input(cm)
	count(results) == 0
}
