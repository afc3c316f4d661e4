# Test input builders for the admission policy tests. A _test.rego file, so production loads skip it.
package tribunal.lib.kubernetes

import rego.v1

mock_input(obj) := {
	"kind": "admission",
	"event": {
		"apiVersion": "admission.k8s.io/v1",
		"kind": "AdmissionReview",
		"request": {
			"uid": "00000000-0000-0000-0000-000000000000",
			"kind": {"group": "", "version": "v1", "kind": object.get(obj, "kind", "")},
			"operation": "CREATE",
			"namespace": "default",
			"object": obj,
			"oldObject": null,
			"userInfo": {"username": "tester"},
			"dryRun": false,
		},
	},
	"subject": {"namespace": "default"},
	"context": {},
}

mock_pod(spec) := mock_input({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})

mock_pod_annotated(annotations, spec) := mock_input({
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": "p", "annotations": annotations},
	"spec": spec,
})

mock_deployment(spec) := mock_input({
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "d"},
	"spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec}},
})

mock_deployment_annotated(annotations, spec) := mock_input({
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "d"},
	"spec": {"template": {"metadata": {"annotations": annotations}, "spec": spec}},
})

mock_cronjob(spec) := mock_input({
	"apiVersion": "batch/v1",
	"kind": "CronJob",
	"metadata": {"name": "c"},
	"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}},
})

# A container that satisfies every rule of the library (restricted, limits, pinned tag).
mock_good_container(name) := {
	"name": name,
	"image": "registry.example.com/app:1.0.0",
	"resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
	"securityContext": {
		"allowPrivilegeEscalation": false,
		"runAsNonRoot": true,
		"capabilities": {"drop": ["ALL"]},
		"seccompProfile": {"type": "RuntimeDefault"},
	},
}

# A container with `patch` merged into its security context.
mock_container_sc(name, patch) := ctr if {
	good := mock_good_container(name)
	ctr := object.union(good, {"securityContext": object.union(good.securityContext, patch)})
}
