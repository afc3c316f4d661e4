"""mTLS between the real kube-apiserver and Tribunal: the API server presents the client certificate of
its AdmissionConfiguration kubeconfig (the control plane sets one up for every webhook), and Tribunal,
given that CA and name, answers its reviews, while a review posted to /validate from anywhere else,
without that certificate, is refused before it is judged or recorded."""

from __future__ import annotations

import json
import ssl

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.conftest import pod, review
from tests.e2e.conftest import StartTribunal
from tests.e2e.control_plane import WEBHOOK_CLIENT_NAME, ControlPlane
from tests.e2e.test_admission import denial, privileged_pod

pytestmark = pytest.mark.e2e


async def test_only_the_api_servers_certificate_gets_an_answer(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal, control_plane: ControlPlane
) -> None:
    published = await tribunal(
        tls_client_ca_file=control_plane.ca.cert_file, tls_client_names=[WEBHOOK_CLIENT_NAME]
    )
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as refused:  # judged: the API server's certificate was accepted
        await core.create_namespaced_pod(namespace, privileged_pod())
    assert refused.value.status == 403 and "[privileged_containers]" in denial(refused)

    url = f"https://{published.address}:{published.port}/validate"
    context = ssl.create_default_context(cafile=str(control_plane.ca.cert_file))
    context.check_hostname = False  # the webhook's certificate names the Service, not this address
    forged = json.dumps(review(pod(), uid="forged")).encode()
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
        http.post(url, data=forged, headers={"Content-Type": "application/json"}) as resp,
    ):
        assert resp.status == 401
    admin = ssl.create_default_context(cafile=str(control_plane.ca.cert_file))
    admin.check_hostname = False
    admin.load_cert_chain(control_plane.admin.cert, control_plane.admin.key)  # signed by the CA, wrong name
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=admin)) as http,
        http.post(url, data=forged, headers={"Content-Type": "application/json"}) as resp,
    ):
        assert resp.status == 403
    await published.server.stop()
    assert "forged" not in {r.evidence.id for r in published.recorder.records}
    assert any(r.verdict.decision.value == "deny" for r in published.recorder.records)
