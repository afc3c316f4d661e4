"""A real Kubernetes control plane for the end-to-end tests, started the way controller-runtime's
envtest starts one: etcd and kube-apiserver (built by `make tools` into .tools/bin) on free loopback
ports, in a temporary folder, with RBAC authorization, a service-account signing key and a client
certificate for the test's admin (group ``system:masters``). No controller manager, scheduler or
kubelet: objects are stored and admitted, nothing runs.

Webhooks are reached through their Service as in a cluster: the API server resolves a Service to its
endpoints (``--enable-aggregator-routing``), so a test publishes Tribunal by creating the Service and
the EndpointSlice/Endpoints that point at this machine's own address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests import components
from tests.e2e.pki import CertificateAuthority, Pair, service_account_keys
from tribunal import devtools

SERVICE_CIDR = "10.96.0.0/24"


def host_address() -> str | None:
    """A non-loopback IPv4 address of this machine (Endpoints may not point at 127.0.0.0/8), or None."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.250", 9))  # no packet is sent: this only picks the outgoing interface
        address: str = sock.getsockname()[0]
        if not address.startswith("127."):
            return address
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if not address.startswith("127."):
                return address
    return None


WEBHOOK_CLIENT_NAME = "kube-apiserver-webhook-client"


class ControlPlane:
    """``start()`` runs etcd and kube-apiserver; ``stop()`` always stops both and removes the folder.
    ``restart_apiserver()`` stops and starts the API server on the same port and etcd (an API server
    restart as a cluster upgrade does it)."""

    def __init__(self) -> None:
        self.etcd_bin = components.tool("etcd")
        self.apiserver_bin = components.tool("kube-apiserver")
        self.root = Path(tempfile.mkdtemp(prefix="tribunal-e2e-"))
        self.ca = CertificateAuthority(self.root / "pki")
        self.admin: Pair = self.ca.issue("tribunal-e2e-admin", organizations=["system:masters"], client=True)
        self.serving: Pair = self.ca.issue("kube-apiserver", hosts=["127.0.0.1", "localhost"])
        self.service_account: Pair = service_account_keys(self.root / "pki")
        self.port = components.free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._etcd_port = components.free_port()
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self.admin_kubeconfig = self.root / "admin.kubeconfig"
        # The client certificate the API server presents to every webhook (its AdmissionConfiguration
        # kubeconfig, user "*"), for the tests of Tribunal's mTLS on /validate; servers that do not
        # ask for one never see it.
        self.webhook_client: Pair = self.ca.issue(WEBHOOK_CLIENT_NAME, client=True)
        self.admission_config = self._write_admission_config()

    def _write_admission_config(self) -> Path:
        kubeconfig = self.root / "webhook-client.kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "users": [
                        {
                            "name": "*",
                            "user": {
                                "client-certificate": str(self.webhook_client.cert),
                                "client-key": str(self.webhook_client.key),
                            },
                        }
                    ],
                }
            )
        )
        config = self.root / "admission-config.json"
        plugin = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "WebhookAdmissionConfiguration",
                  "kubeConfigFile": str(kubeconfig)}  # fmt: skip
        config.write_text(
            json.dumps(
                {
                    "apiVersion": "apiserver.config.k8s.io/v1",
                    "kind": "AdmissionConfiguration",
                    "plugins": [{"name": "ValidatingAdmissionWebhook", "configuration": plugin}],
                }
            )
        )
        return config

    def start(self) -> None:
        try:
            self._start_etcd()
            self._start_apiserver()
        except BaseException:
            self.stop()
            raise
        self.write_kubeconfig(self.admin_kubeconfig, client=self.admin)

    def stop(self) -> None:
        for process in (self._apiserver, self._etcd):
            if process is not None:
                components.stop(process, 20)
        self._apiserver = self._etcd = None
        shutil.rmtree(self.root, ignore_errors=True)

    def restart_apiserver(self) -> None:
        assert self._apiserver is not None
        components.stop(self._apiserver, 20)
        self._start_apiserver()

    async def restart_apiserver_async(self) -> None:
        """``restart_apiserver`` while the event loop keeps running. The process is spawned from the
        calling thread: its parent-death signal follows the thread that forked it, so a process
        started from a worker thread would be killed when that thread ends."""
        assert self._apiserver is not None
        await asyncio.to_thread(components.stop, self._apiserver, 20)
        process, log = self._spawn_apiserver()
        await asyncio.to_thread(components.wait_until, self._ready, process, "kube-apiserver", log, 120)

    async def start_apiserver_async(self) -> None:
        """``start_apiserver`` while the event loop keeps running (spawned from the calling thread,
        as ``restart_apiserver_async`` explains)."""
        process, log = self._spawn_apiserver()
        await asyncio.to_thread(components.wait_until, self._ready, process, "kube-apiserver", log, 120)

    def stop_apiserver(self) -> None:
        assert self._apiserver is not None
        components.stop(self._apiserver, 20)

    def start_apiserver(self) -> None:
        self._start_apiserver()

    def _start_etcd(self) -> None:
        peer = components.free_port()
        client_url = f"http://127.0.0.1:{self._etcd_port}"
        log = self.root / "etcd.log"
        with open(log, "ab") as out:
            self._etcd = subprocess.Popen(
                [str(self.etcd_bin), "--data-dir", str(self.root / "etcd"), "--name", "e2e",
                 "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                 "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-cluster", f"e2e=http://127.0.0.1:{peer}",
                 "--unsafe-no-fsync", "--log-level", "warn"],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=devtools.die_with_parent,
            )  # fmt: skip
        components.wait_until(self._etcd_healthy, self._etcd, "etcd", log, 60)

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self._etcd_port}/health", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _start_apiserver(self) -> None:
        process, log = self._spawn_apiserver()
        components.wait_until(self._ready, process, "kube-apiserver", log, 120)

    def _spawn_apiserver(self) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.root / "kube-apiserver.log"
        with open(log, "ab") as out:
            self._apiserver = subprocess.Popen(
                [str(self.apiserver_bin),
                 f"--etcd-servers=http://127.0.0.1:{self._etcd_port}",
                 "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
                 f"--tls-cert-file={self.serving.cert}", f"--tls-private-key-file={self.serving.key}",
                 f"--client-ca-file={self.ca.cert_file}",
                 f"--cert-dir={self.root / 'apiserver-certs'}",
                 "--authorization-mode=RBAC",
                 f"--service-cluster-ip-range={SERVICE_CIDR}",
                 "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                 f"--service-account-key-file={self.service_account.cert}",
                 f"--service-account-signing-key-file={self.service_account.key}",
                 "--api-audiences=https://kubernetes.default.svc.cluster.local",
                 # Without a controller manager no namespace gets its `default` ServiceAccount (envtest's choice).
                 "--disable-admission-plugins=ServiceAccount",
                 "--allow-privileged=true",
                 f"--admission-control-config-file={self.admission_config}",
                 # Webhook Services resolve to their endpoints (this machine), not to an unrouted ClusterIP.
                 "--enable-aggregator-routing=true",
                 "--endpoint-reconciler-type=none",
                 "--v=1"],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=devtools.die_with_parent,
            )  # fmt: skip
        return self._apiserver, log

    def _ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca.cert_file))
        context.load_cert_chain(self.admin.cert, self.admin.key)
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        path = self.root / "kube-apiserver.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def write_kubeconfig(self, path: Path, *, client: Pair | None = None, token: str | None = None) -> Path:
        """A kubeconfig for this API server, authenticating with a client certificate or a bearer token."""
        user: dict[str, str] = {}
        if client is not None:
            user = {"client-certificate": str(client.cert), "client-key": str(client.key)}
        if token is not None:
            user = {"token": token}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca.cert_file)},
                }
            ],
            "users": [{"name": "e2e", "user": user}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
            "current-context": "e2e",
        }
        path.write_text(yaml.safe_dump(config))
        os.chmod(path, 0o600)
        return path


@contextlib.contextmanager
def running_control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane()
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
