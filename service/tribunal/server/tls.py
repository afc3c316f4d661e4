"""TLS for the server: a context loaded from PEM files and reloaded when they change on disk
(cert-manager rotates them in place), and a self-signed pair for local use."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)


class CertificateReloader:
    """An SSLContext serving ``cert_file``/``key_file``. ``check()`` loads them again when their
    modification time or size changed; new connections get the new pair, open ones keep theirs.
    A pair that fails to load (half-written during a rotation) leaves the previous one serving."""

    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_ca_file is not None:
            # Asked, not required, at the handshake: only /validate requires one (server/auth.py);
            # a certificate offered must be one the CA signed, or the handshake fails.
            self.context.verify_mode = ssl.CERT_OPTIONAL
            self.context.load_verify_locations(cafile=str(client_ca_file))
        self.reloads = 0
        self.last_error: str | None = None
        self._stamp = self._file_stamp()
        self.context.load_cert_chain(self.cert_file, self.key_file)  # a bad pair at start is fatal

    def _file_stamp(self) -> tuple[int, ...]:
        stamp: list[int] = []
        for path in (self.cert_file, self.key_file):
            try:
                st = path.stat()
                stamp += [st.st_mtime_ns, st.st_size, st.st_ino]
            except OSError:
                stamp += [0, 0, 0]
        return tuple(stamp)

    def check(self) -> bool:
        """Reload the pair if the files changed; True when a new pair now serves."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        try:
            self.context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            self.last_error = f"{self.cert_file}: {exc}"
            log.error("TLS certificate reload failed, keeping the previous pair: %s", self.last_error)
            return False  # stamp not updated: the next check tries again
        self._stamp = stamp
        self.last_error = None
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert_file)
        return True

    async def watch(self, interval: float = 5.0) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.check()


def generate_self_signed(
    directory: Path, hosts: list[str] | None = None, days: int = 365
) -> tuple[Path, Path]:
    """Write ``tls.crt`` and ``tls.key`` (ECDSA P-256) valid for ``hosts`` (DNS names or IPs;
    default localhost and 127.0.0.1) into ``directory``; the certificate is its own CA."""
    hosts = hosts or ["localhost", "127.0.0.1", "::1"]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file
