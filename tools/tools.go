//go:build tools

// Package tools pins the real servers the end-to-end tests run: kube-apiserver and etcd, built
// from k8s.io/kubernetes at the version below by `make tools` (see ../Makefile). Nothing here is
// shipped with Tribunal.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
