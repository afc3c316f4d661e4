"""The admission webhook under load, beside a bare aiohttp handler measured in the same run.

Each server runs as its own process over HTTPS on loopback and gets the same AdmissionReviews
(../shared/fixtures/admission, else examples/admission): the bare handler, ``tribunal serve`` as
configured by default (judging in its judge worker process: TRIBUNAL_WEBHOOK_JUDGE=pool, one worker
per core but one) and, unless --no-compare-inline, ``tribunal serve`` judging on its event loop
(TRIBUNAL_WEBHOOK_JUDGE=inline):

- saturation: wrk (Debian package `wrk`) with --connections keep-alive connections for --seconds:
  requests/s and latency p50/p99/max as wrk reports them (closed loop);
- fixed rate: wrk again, paced: each of --rate-connections connections waits an exponentially
  distributed time (mean: connections / --rate) after each answer, so requests arrive as a Poisson
  stream of about --rate per second (the rate reached is printed). Latency is wrk's, from send to
  answer. wrk costs the machine a few microseconds per request; the Python open-loop client this
  replaced cost 0.46 ms of CPU per request on a 2-core VM and measured itself: it gave the bare
  handler a p50 of 1.3 ms where wrk gives 0.35.

The bare handler only parses the AdmissionReview (orjson) and answers a fixed allow with its uid: the
ceiling of aiohttp + TLS on this machine. The engine's own time per review (Judge.judge, median) is
printed beside them, and the CPU each server used per request at saturation: its event loop's thread,
the whole process (with aiosqlite's thread) and with its workers; with how busy the event loop's
thread was and how idle the machine (a loop near 100% bounds the server; no idle, the machine).

``--rounds N`` runs the servers N times, interleaved (bare, pool, inline, bare, ...), and prints each
round's ratio to the bare handler of the same round and their median.

    python bench/bench_webhook.py [--seconds 10] [--connections 32] [--rate 500] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "admission"
INLINE = "tribunal serve, judging on its event loop (inline)"
BARE = "bare aiohttp handler (ceiling)"
# Every request carries a uid of its own, as the API server's do: the bodies hold a placeholder
# where the uid goes, filled with this wrk run's tag (args[2]) and a counter. With the fixtures' own
# uids, every verdict after the first 40 would be a redelivery the store skips, not a write.
LUA_REQUESTS = """
local prefixes, suffixes = {}, {}
local i, n = 0, 0
local tag = ""
function read_bodies(args)
  for line in io.lines(args[1]) do
    local a, b = line:find("@@UID@@", 1, true)
    prefixes[#prefixes + 1] = line:sub(1, a - 1)
    suffixes[#suffixes + 1] = line:sub(b + 1)
  end
  tag = args[2]
end
function request()
  i = i % #prefixes + 1
  n = n + 1
  local body = prefixes[i] .. tag .. "-" .. n .. suffixes[i]
  return wrk.format("POST", "/validate", {["Content-Type"] = "application/json"}, body)
end
"""
WRK_SCRIPT = LUA_REQUESTS + "function init(args) read_bodies(args) end\n"
# Paced: after each answer a connection waits an exponential time of mean args[3] ms (wrk rounds a
# delay down to whole milliseconds: + 0.5 keeps the mean), so arrivals over many connections are
# Poisson, not in lockstep (a fixed delay sent every connection's request at once).
PACED_SCRIPT = (
    LUA_REQUESTS
    + """
local mean = 0
function init(args)
  read_bodies(args)
  mean = tonumber(args[3])
  math.randomseed(os.time())
end
function delay()
  return -math.log(1 - math.random()) * mean + 0.5
end
"""
)
UID = "@@UID@@"


def reviews() -> list[bytes]:
    base = SHARED if SHARED.is_dir() else ROOT / "examples" / "admission"
    docs = []
    for path in sorted(base.glob("*.json")):
        doc = orjson.loads(path.read_bytes())
        if doc.get("kind") == "AdmissionReview":
            doc["request"]["namespace"] = doc["request"].get("namespace") or "bench"
            doc["request"]["uid"] = UID
            docs.append(orjson.dumps(doc))
    return docs


def serve_bare(port: int, cert: str, key: str) -> None:
    """The ceiling: parse the review, answer a fixed allow."""
    from aiohttp import web

    async def validate(request: web.Request) -> web.Response:
        review = orjson.loads(await request.read())
        answer = {
            "apiVersion": review["apiVersion"],
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes([web.post("/validate", validate), web.get("/readyz", healthz)])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None, access_log=None)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, context: ssl.SSLContext) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        for _ in range(300):
            try:
                async with session.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def run_wrk(
    url: str, bodies_file: Path, script: Path, seconds: float, connections: int, *extra: str
) -> dict[str, float]:
    """wrk's figures; ``extra`` goes to the script after the bodies file and this run's uid tag."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(bodies_file),
            f"{time.time_ns():x}",  # this run's uid tag
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}

    def ms(text: str) -> float:
        value, suffix = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(value) * unit[suffix]

    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not (p50 and p99 and mx and rps):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "p50": ms(p50.group(1)),
        "p99": ms(p99.group(1)),
        "max": ms(mx.group(1)),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def cpu_seconds(pid: int) -> tuple[float, float, float]:
    """CPU time (user + system) of process ``pid``'s main thread (its event loop), of the process
    and of it with all its descendants (the judge workers are children of the forkserver, itself a
    child of the server), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / tick

    def descends(p: int) -> bool:
        while p > 1:
            if p == pid:
                return True
            p = parents.get(p, 0)
        return False

    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        main_thread = (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        main_thread = 0.0
    return main_thread, times.get(pid, 0.0), sum(t for p, t in times.items() if descends(p))


def idle_seconds() -> float:
    """Idle time of the whole machine so far (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")  # idle + iowait


def engine_median(bodies: list[bytes]) -> float:
    from tribunal.model import parse_evidence
    from tribunal.policy import Judge, load_enforcement, load_policy_set

    judge = Judge.build(load_policy_set(ROOT / "policies"), "regorus", load_enforcement(ROOT / "rules"))
    evidence = [parse_evidence(orjson.loads(b), "bench") for b in bodies]
    for e in evidence:
        judge.judge(e)
    times = []
    for i in range(4000):
        t0 = time.perf_counter()
        judge.judge(evidence[i % len(evidence)])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument(
        "--rate-connections", type=int, default=50, help="connections sharing the fixed --rate"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every server this many times, round by round (on a noisy machine the ratio of each "
        "round, bare and tribunal minutes apart, says more than one long run)",
    )
    parser.add_argument(
        "--compare-inline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run tribunal serve judging on its event loop (TRIBUNAL_WEBHOOK_JUDGE=inline)",
    )
    parser.add_argument("--serve-bare", nargs=3, metavar=("PORT", "CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1], args.serve_bare[2])
        return 0
    if shutil.which("wrk") is None:
        print("bench_webhook needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 1
    from tribunal.server import generate_self_signed

    work = Path(tempfile.mkdtemp(prefix="tribunal-bench-"))
    cert, key = generate_self_signed(work)
    bodies = reviews()
    bodies_file = work / "bodies.jsonl"
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    paced = work / "paced.lua"
    paced.write_text(PACED_SCRIPT)
    mean_delay_ms = str(args.rate_connections * 1000 / args.rate)
    context = ssl.create_default_context(cafile=str(cert))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    print(
        f"{len(bodies)} AdmissionReviews; wrk -t1 -c{args.connections} {args.seconds:g}s; "
        f"fixed rate: about {args.rate:g}/s over {args.rate_connections} paced connections\n"
    )
    tribunal = [
        str(Path(sys.executable).parent / "tribunal"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--log-level",
        "WARNING",
    ]
    servers = {
        BARE: [
            sys.executable,
            __file__,
            "--serve-bare",
            "{port}",
            str(cert),
            str(key),
        ],
        "tribunal serve (pool, the default)": tribunal,
        INLINE: tribunal,
    }
    variant_env = {
        "tribunal serve (pool, the default)": {"TRIBUNAL_WEBHOOK_JUDGE": "pool"},
        INLINE: {"TRIBUNAL_WEBHOOK_JUDGE": "inline"},
    }
    if not args.compare_inline:
        del servers[INLINE]
    rows: list[tuple[int, str, dict[str, float], dict[str, float]]] = []
    for round_no in range(1, args.rounds + 1):
        for name, command in servers.items():
            port = free_port()
            proc = subprocess.Popen(
                [part.replace("{port}", str(port)) for part in command],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={
                    **os.environ,
                    "TRIBUNAL_EXEMPT_NAMESPACES": "",
                    "TRIBUNAL_SHUTDOWN_DELAY_SECONDS": "0",  # no endpoint to leave: stop at SIGTERM
                    "TRIBUNAL_DATABASE_URL": f"sqlite+aiosqlite:///{work / f'bench-{len(rows)}.db'}",
                    "TRIBUNAL_ACTIONS__STATE_DIR": str(work / f"state-{len(rows)}"),
                    **variant_env.get(name, {}),
                },
            )
            url = f"https://127.0.0.1:{port}"
            try:
                asyncio.run(wait_ready(url, context))
                # The fixed rate first, on a server in its steady state: after a saturation run the
                # recorder still writes the backlog for seconds, and that is not 500/s.
                run_wrk(url, bodies_file, paced, 2, args.rate_connections, mean_delay_ms)  # warm-up
                steady = run_wrk(url, bodies_file, paced, args.seconds, args.rate_connections, mean_delay_ms)
                run_wrk(url, bodies_file, script, 2, args.connections)  # warm-up
                before, idle_before, started = cpu_seconds(proc.pid), idle_seconds(), time.perf_counter()
                saturated = run_wrk(url, bodies_file, script, args.seconds, args.connections)
                after, idle_after, wall = cpu_seconds(proc.pid), idle_seconds(), time.perf_counter() - started
                done = saturated["rps"] * max(1, round(args.seconds))
                saturated["cpu_loop"] = (after[0] - before[0]) * 1000 / done
                saturated["cpu_main"] = (after[1] - before[1]) * 1000 / done
                saturated["cpu_all"] = (after[2] - before[2]) * 1000 / done
                saturated["loop_busy"] = (after[0] - before[0]) / wall
                saturated["idle"] = (idle_after - idle_before) / (wall * (os.cpu_count() or 1))
            finally:
                proc.terminate()
                proc.wait(10)
            rows.append((round_no, name, saturated, steady))
    print(
        "| round | server | saturation req/s | p50 ms | p99 ms | max ms | non-2xx | "
        f"at ~{args.rate:g}/s: req/s | p50 ms | p99 ms | max ms | non-2xx |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for round_no, name, sat, steady in rows:
        print(
            f"| {round_no} | {name} | {sat['rps']:,.0f} | {sat['p50']:.2f} | {sat['p99']:.2f} "
            f"| {sat['max']:.1f} | {sat['errors']:.0f} "
            f"| {steady['rps']:,.0f} | {steady['p50']:.2f} | {steady['p99']:.2f} | {steady['max']:.1f} "
            f"| {steady['errors']:.0f} |"
        )
    print(
        "\n| round | server | / bare at saturation | CPU ms per request: event loop thread | server "
        "process | with its workers | event loop thread busy | machine idle |"
    )
    print("|---|---|---|---|---|---|---|---|")
    bare = {r: sat["rps"] for r, name, sat, _ in rows if name == BARE}
    ratios: dict[str, list[float]] = {}
    for round_no, name, sat, _ in rows:
        ratio = sat["rps"] / bare[round_no]
        ratios.setdefault(name, []).append(ratio)
        print(
            f"| {round_no} | {name} | {ratio:.1%} | {sat['cpu_loop']:.3f} | {sat['cpu_main']:.3f} "
            f"| {sat['cpu_all']:.3f} | {sat['loop_busy']:.0%} | {sat['idle']:.0%} |"
        )
    if args.rounds > 1:
        print("\n| server | / bare at saturation: median of the rounds (range) |")
        print("|---|---|")
        for name, values in ratios.items():
            print(f"| {name} | {statistics.median(values):.1%} ({min(values):.1%}-{max(values):.1%}) |")
    print(
        "engine time per review (Judge.judge median, same reviews, this process): "
        f"{engine_median(bodies):.3f} ms"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
