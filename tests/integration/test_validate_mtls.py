"""mTLS on /validate over real TLS: with TRIBUNAL_TLS_CLIENT_CA_FILE, a review is answered only for a
client certificate that CA signed (the API server's, from its AdmissionConfiguration kubeconfig) and,
with TRIBUNAL_TLS_CLIENT_NAMES, only for those names; health stays open, other doors keep their own
rules. Without the setting /validate stays open (the API server sends no token)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import pod, review
from tests.e2e.pki import CertificateAuthority, Pair
from tests.integration.conftest import StartServer

BODY = json.dumps(review(pod(), uid="mtls-1")).encode()
HEADERS = {"Content-Type": "application/json"}


def _context(tls_pair: tuple[Path, Path], client: Pair | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls_pair[0]))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


async def _post(url: str, context: ssl.SSLContext) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
        http.post(f"{url}/validate", data=BODY, headers=HEADERS) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_validate_answers_only_the_api_servers_certificate(
    start_server: StartServer, tls_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path / "ca", "front-proxy-ca")
    stranger = CertificateAuthority(tmp_path / "other", "someone-elses-ca")
    apiserver = ca.issue("kube-apiserver", client=True)
    other_name = ca.issue("a-pod", client=True)
    forged = stranger.issue("kube-apiserver", client=True)
    server, recorder = await start_server(
        tls_client_ca_file=ca.cert_file, tls_client_names=["kube-apiserver"]
    )

    status, answer = await _post(server.url, _context(tls_pair, apiserver))
    assert status == 200 and answer["response"]["uid"] == "mtls-1"  # type: ignore[index]
    status, error = await _post(server.url, _context(tls_pair, None))
    assert status == 401 and "client certificate" in str(error["error"])
    status, error = await _post(server.url, _context(tls_pair, other_name))
    assert status == 403 and "a-pod" in str(error["error"])
    with pytest.raises(aiohttp.ClientError):  # the handshake refuses a certificate the CA did not sign
        await _post(server.url, _context(tls_pair, forged))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_context(tls_pair, None))) as http,
        http.get(f"{server.url}/healthz") as resp,
    ):
        assert resp.status == 200  # health needs no certificate
    await server.stop()
    assert [r.evidence.id for r in recorder.records] == ["mtls-1"]  # only the API server's review


async def test_without_a_client_ca_validate_stays_open(
    start_server: StartServer, tls_pair: tuple[Path, Path]
) -> None:
    server, _ = await start_server()
    status, answer = await _post(server.url, _context(tls_pair, None))
    assert status == 200 and answer["response"]["uid"] == "mtls-1"  # type: ignore[index]


async def test_a_client_ca_without_tls_is_refused_at_start(start_server: StartServer, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    with pytest.raises(ValueError, match="TRIBUNAL_TLS_CLIENT_CA_FILE needs TLS"):
        await start_server(tls=False, tls_client_ca_file=ca.cert_file)
