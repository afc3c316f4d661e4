"""Policy evaluation speed per evidence kind, on the embedded engines (regorus as Tribunal runs it:
admission reviews on its RVM; regorus-interpreter: its interpreter for every kind; regopy), and on
the real OPA server (``opa``: `opa run --server` from .tools/bin, built by `make tools`, one per library
on loopback, judged through Tribunal's OPA engine: the HTTP client, loopback and OPA's evaluation).

For each kind it judges real samples (../shared/fixtures when present, else examples/) and prints, as a
Markdown table: median and p99 latency of one judgement (engine plus the Python that builds the input
and the typed Verdict), evidences/s on one thread, and the median of the engine's evaluation alone;
beside them the ceiling measured in the same run: the same engine evaluating the same inputs with no
policy loaded (only the aggregation rule), i.e. the fixed cost of a call. The last table runs regorus in
one and in two worker processes (regorus holds the GIL, so only processes use the second core).

    python bench/bench_engine.py [--seconds 2] [--engines regorus,regorus-interpreter,regopy,opa]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson

from tribunal.model import Evidence, EvidenceKind
from tribunal.policy import EngineOptions, Judge, create_engine, load_policy_set
from tribunal.sources import expand_paths, read_evidence

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures"
FOLDERS = {"admission": "admission", "falco": "falco", "trivy": "trivy"}


def samples(kind: str) -> list[Evidence]:
    base = SHARED / FOLDERS[kind] if SHARED.is_dir() else ROOT / "examples" / FOLDERS[kind]
    found = []
    for path in expand_paths([str(base)]):
        for item in read_evidence(path, EvidenceKind(kind)):
            if isinstance(item, Evidence):
                found.append(item)
    return found


def empty_library() -> Path:
    root = Path(tempfile.mkdtemp()) / "policies"
    (root / "lib").mkdir(parents=True)
    shutil.copy(ROOT / "policies" / "lib" / "judge.rego", root / "lib" / "judge.rego")
    return root


def measure(fn, inputs: list, seconds: float) -> tuple[list[float], int, float]:
    """Call fn on inputs round-robin for ``seconds``; per-call latencies (ms), calls, elapsed."""
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    i = 0
    while True:
        t0 = time.perf_counter()
        fn(inputs[i % len(inputs)])
        t1 = time.perf_counter()
        latencies.append((t1 - t0) * 1000)
        i += 1
        if t1 >= deadline:
            break
    return latencies, i, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _worker(args: tuple[str, str, list[bytes], float]) -> int:
    policy_dir, kind, inputs, seconds = args
    engine = create_engine("regorus", load_policy_set(policy_dir))
    _, calls, _ = measure(lambda data: engine.evaluate(kind, data), inputs, seconds)
    return calls


OPA = ROOT / ".tools" / "bin" / "opa"


@contextlib.contextmanager
def opa_server() -> Iterator[str]:
    """A real `opa run --server` on a free loopback port (decision logs off); its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [str(OPA), "run", "--server", f"--addr=127.0.0.1:{port}", "--log-level=error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=1):
                break
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--engines", default="regorus,regorus-interpreter,regopy" + (",opa" if OPA.exists() else "")
    )
    args = parser.parse_args()
    servers = contextlib.ExitStack()
    policy_set = load_policy_set(ROOT / "policies")
    ceiling_set = load_policy_set(empty_library())
    counts: dict[str, int] = {}
    for info in policy_set.policies.values():
        counts[info.kind] = counts.get(info.kind, 0) + 1
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    print(
        f"policies: {counts} (revision {policy_set.revision}); samples: "
        f"{'../shared/fixtures' if SHARED.is_dir() else 'examples/'}\n"
    )
    print(
        "| kind | engine | samples | judge median ms | judge p99 ms | evidences/s | engine median ms "
        "| ceiling median ms | ceiling evals/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    per_kind_inputs: dict[str, list[bytes]] = {}
    for kind in FOLDERS:
        evidence = samples(kind)
        if not evidence:
            continue
        inputs = [orjson.dumps(e.policy_input()) for e in evidence]
        per_kind_inputs[kind] = inputs
        for name in args.engines.split(","):
            options = EngineOptions()
            ceiling_options = EngineOptions()
            if name == "opa":  # one server for the library, one for the ceiling: each holds one revision
                options = EngineOptions(opa_url=servers.enter_context(opa_server()))
                ceiling_options = EngineOptions(opa_url=servers.enter_context(opa_server()))
            judge = Judge.build(policy_set, name, engine_options=options)
            ceiling = create_engine(name, ceiling_set, ceiling_options)
            for e in evidence:  # warm up, and fail loudly on an error
                judge.judge(e)
            lat, calls, elapsed = measure(judge.judge, evidence, args.seconds)
            e_lat, _, _ = measure(
                lambda data, e=judge.engine, k=kind: e.evaluate(k, data), inputs, args.seconds / 2
            )
            c_lat, c_calls, c_elapsed = measure(
                lambda data, c=ceiling, k=kind: c.evaluate(k, data), inputs, args.seconds / 2
            )
            print(
                f"| {kind} | {name} | {len(evidence)} | {statistics.median(lat):.3f} "
                f"| {pct(lat, 0.99):.3f} | {calls / elapsed:,.0f} | {statistics.median(e_lat):.3f} "
                f"| {statistics.median(c_lat):.3f} | {c_calls / c_elapsed:,.0f} |"
            )
    servers.close()
    print("\nregorus, engine only (pre-serialised input), one vs two worker processes:\n")
    print("| kind | 1 process evals/s | 2 processes evals/s | speed-up |")
    print("|---|---|---|---|")
    ctx = multiprocessing.get_context("spawn")
    for kind, inputs in per_kind_inputs.items():
        rates = []
        for workers in (1, 2):
            with ctx.Pool(workers) as pool:
                calls = pool.map(_worker, [(str(ROOT / "policies"), kind, inputs, args.seconds)] * workers)
            rates.append(sum(calls) / args.seconds)
        print(f"| {kind} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[1] / rates[0]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
