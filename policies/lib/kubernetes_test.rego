package tribunal.lib.kubernetes

import rego.v1

test_pod_specs_of_pod if {
	specs := pod_specs with input as mock_pod({"containers": []})
	{ps.path | some ps in specs} == {"spec"}
}

template_paths(kind) := paths if {
	obj := {"kind": kind, "spec": {"template": {"metadata": {"annotations": {"a": "b"}}, "spec": {"containers": []}}}}
	specs := pod_specs with input as mock_input(obj)
	paths := {[ps.path, ps.meta_path] | some ps in specs}
}

test_pod_specs_of_template_kinds if {
	every kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"] {
		template_paths(kind) == {["spec.template.spec", "spec.template.metadata"]}
	}
}

test_pod_specs_of_cronjob if {
	specs := pod_specs with input as mock_cronjob({"containers": []})
	{ps.path | some ps in specs} == {"spec.jobTemplate.spec.template.spec"}
}

test_pod_specs_of_non_workloads_are_empty if {
	count(pod_specs) == 0 with input as mock_input({"kind": "Service", "spec": {"ports": []}})
	count(pod_specs) == 0 with input as mock_input({"kind": "ConfigMap", "data": {"spec": "x"}})
	count(pod_specs) == 0 with input as {"kind": "admission", "event": {"request": {"operation": "DELETE", "object": null}}}
}

test_containers_of_every_list if {
	spec := {
		"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
		"initContainers": [{"name": "i", "image": "i:1"}],
		"ephemeralContainers": [{"name": "e", "image": "e:1"}],
	}
	cs := containers with input as mock_deployment(spec)
	{[c.field, c.name, c.path] | some c in cs} == {
		["containers", "a", "spec.template.spec.containers[0]"],
		["containers", "b", "spec.template.spec.containers[1]"],
		["initContainers", "i", "spec.template.spec.initContainers[0]"],
		["ephemeralContainers", "e", "spec.template.spec.ephemeralContainers[0]"],
	}
}

test_containers_tolerate_nulls if {
	spec := {"containers": null, "initContainers": [null, {"name": "i", "securityContext": null}], "securityContext": null}
	cs := containers with input as mock_pod(spec)
	count(cs) == 1
	some c in cs
	c.name == "i"
	c.image == ""
	c.ref == "initContainers/i"
	c.path == "spec.initContainers[1]"
	c.pod.windows == false
}

test_container_names_and_images_are_strings if {
	spec := {"os": {"name": "windows"}, "containers": [{"name": 5, "image": null}, {"name": "b"}]}
	cs := containers with input as mock_pod(spec)
	[[c.name, c.image, c.ref] | some c in cs] == [["", "", "containers/"], ["b", "", "containers/b"]]
	every c in cs {
		c.pod.windows
	}
}

test_pod_specs_use_the_request_kind_when_the_object_has_none if {
	obj := {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}
	review := object.union(mock_input(obj), {"event": {"request": {"kind": {"kind": "Deployment"}}}})
	[ps.path | some ps in pod_specs] == ["spec.template.spec"] with input as review
}

test_pod_specs_annotations_tolerate_nulls if {
	specs := pod_specs with input as mock_deployment_annotated(null, {"containers": []})
	[ps.annotations | some ps in specs] == [{}]
}

test_pod_annotations if {
	specs := pod_specs with input as mock_deployment_annotated({"x": "y"}, {"containers": []})
	some ps in specs
	pod_annotations(ps) == {"x": "y"}
}

test_image_parsing if {
	image_registry("nginx") == "docker.io"
	image_repository("nginx") == "library/nginx"
	image_tag("nginx") == ""
	image_reference("nginx") == "docker.io/library/nginx"
	image_registry("ghcr.io/kedacore/keda:latest") == "ghcr.io"
	image_repository("ghcr.io/kedacore/keda:latest") == "kedacore/keda"
	image_tag("ghcr.io/kedacore/keda:latest") == "latest"
	image_registry("localhost:5000/foo/bar:1@sha256:abc") == "localhost:5000"
	image_tag("localhost:5000/foo/bar:1@sha256:abc") == "1"
	image_digest("localhost:5000/foo/bar:1@sha256:abc") == "sha256:abc"
	image_tag("localhost:5000/foo") == ""
	image_reference("docker.io/nginx:1.25") == "docker.io/library/nginx:1.25"
	image_reference("index.docker.io/bitnami/redis:7") == "docker.io/bitnami/redis:7"
	image_reference("openpolicyagent/opa:0.9.2") == "docker.io/openpolicyagent/opa:0.9.2"
}

test_image_prefix_matching if {
	image_matches_prefix("ghcr.io/myorg/app:1", "ghcr.io/myorg/")
	image_matches_prefix("nginx", "docker.io/library/")
	image_matches_prefix("quay.io/x/y:1", "quay.io")
	image_matches_prefix("nginx:1.25", "docker.io/library/nginx")
	not image_matches_prefix("quay.io.evil.com/x:1", "quay.io")
	not image_matches_prefix("ghcr.io/myorg2/app:1", "ghcr.io/myorg/")
}

test_mock_good_container_is_compliant if {
	c := mock_good_container("x")
	c.securityContext.allowPrivilegeEscalation == false
	p := mock_container_sc("x", {"privileged": true})
	p.securityContext.privileged == true
	p.securityContext.runAsNonRoot == true
}
