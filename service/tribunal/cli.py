"""The ``tribunal`` command: ``judge`` evidence files, ``policy test`` the Rego library, ``report``."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from tribunal import __version__
from tribunal.app import build_policy_runtime, build_server, build_store, policy_kinds, run_consumers, serve
from tribunal.devtools import DEV_INFO, BrokerUnavailable, DemoTarget, EmbeddedBroker, run_demo
from tribunal.model import Decision, EvidenceError, EvidenceKind, TribunalError, Verdict
from tribunal.policy import PolicyError, engine_names, load_enforcement, load_policy_set, run_policy_tests
from tribunal.reports import FORMATS, build_report, get_format, load_framework, parse_since
from tribunal.reports.formats.sarif import JudgeSarif
from tribunal.server import Server, generate_self_signed
from tribunal.settings import Settings
from tribunal.sources import expand_paths, read_evidence
from tribunal.sources.files import EVIDENCE_SUFFIXES

# Exit codes (docs/cli.md): 0 done; 1 an error (a document that could not be judged, bad settings, a
# server that could not start); 2 a usage error (argparse's own); 3 a verdict reached --fail-on (as
# conftest gives failing policies their own code, a CI job can tell "the manifests fail" from "broken").
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_VERDICT = 0, 1, 2, 3
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("tribunal.cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_ERROR
    try:
        code: int = args.handler(args)
    except PolicyError as exc:
        print(f"tribunal: policy error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        print(f"tribunal: invalid settings: {errors}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except (TribunalError, ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"tribunal: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line, the traceback with --debug
        if args.debug:
            raise
        print(
            f"tribunal: internal error: {type(exc).__name__}: {exc} (--debug shows the traceback; "
            "please report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tribunal",
        description="Judge Kubernetes evidence (admission reviews, Falco alerts, Trivy reports) against "
        "Rego policies: from files (judge), as a webhook and HTTP ingest (serve, dev), from Kafka "
        "(consume); test and list the policies (policy); export compliance reports (report). "
        "Exit codes: 0 done, 1 error, 2 usage error, 3 a verdict reached --fail-on.",
    )
    parser.add_argument("--version", action="version", version=f"tribunal {__version__}")
    parser.add_argument("--config", type=Path, help="YAML settings file (TRIBUNAL_* variables override it)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(metavar="COMMAND")

    judge = commands.add_parser(
        "judge",
        help="judge evidence files and print one verdict per line",
        description="Judge AdmissionReviews, Falco alerts and Trivy reports (JSON, JSON Lines, YAML; - "
        "for stdin; directories are searched, hidden files aside). Exit 0; 3 when a verdict reaches "
        "--fail-on; 1 when any document could not be judged (the others still are) or no evidence "
        "was found (unless --allow-empty).",
    )
    judge.add_argument("files", nargs="+", metavar="FILE", help="evidence file, directory, or -")
    judge.add_argument("--policies", type=Path, help="policy directory [TRIBUNAL_POLICY_DIR or bundled]")
    judge.add_argument("--rules", type=Path, help="rules directory [TRIBUNAL_RULES_DIR or bundled]")
    judge.add_argument("--data", type=Path, action="append", default=[], help="extra data file (JSON/YAML)")
    judge.add_argument("--kind", choices=[k.value for k in EvidenceKind], help="expect this kind")
    judge.add_argument("--engine", choices=engine_names(), help="Rego backend [regorus]")
    judge.add_argument("--fail-on", choices=["deny", "warn"], help="exit 3 when a verdict reaches this")
    judge.add_argument(
        "--allow-empty", action="store_true", help="exit 0 when no evidence is found (default: exit 1)"
    )
    judge.add_argument(
        "--format",
        choices=["json", "table", "sarif"],
        default="json",
        help="output: a verdict per line, a table, or one SARIF 2.1.0 document for code scanning "
        "(a result per violation, at its file and line) [json]",
    )
    judge.set_defaults(handler=_judge)

    policy = commands.add_parser("policy", help="work with the Rego policy library")
    policy_commands = policy.add_subparsers(metavar="COMMAND")
    test = policy_commands.add_parser(
        "test",
        help="run the test_* rules of every *_test.rego, as 'opa test' does",
        description="Exit 1 when any test fails or errors.",
    )
    test.add_argument("directory", nargs="?", type=Path, help="policy directory [bundled]")
    test.add_argument("--data", type=Path, action="append", default=[], help="extra data file")
    test.add_argument("--run", metavar="REGEX", help="only tests whose data path matches")
    test.add_argument("-v", "--verbose", action="store_true", help="list every test, not only failures")
    test.set_defaults(handler=_policy_test)
    listing = policy_commands.add_parser(
        "list", help="list the policies with their kind, enforcement, severity and controls"
    )
    listing.add_argument("directory", nargs="?", type=Path, help="policy directory [bundled]")
    listing.add_argument("--rules", type=Path, help="rules directory, for enforcement overrides [bundled]")
    listing.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    listing.set_defaults(handler=_policy_list)

    serve = commands.add_parser(
        "serve",
        help="run the server: the validating admission webhook, health, readiness and metrics",
        description="Serve POST /validate, GET /healthz, /readyz and /metrics on one port until SIGTERM. "
        "Every flag has a TRIBUNAL_* variable of the same name (see docs/operations.md).",
    )
    _server_flags(serve)
    serve.set_defaults(handler=_serve)

    dev = commands.add_parser(
        "dev",
        help="run the server locally over HTTPS with a generated self-signed certificate",
        description="Generate a self-signed certificate for localhost (once, in --cert-dir) and serve on "
        "127.0.0.1 over HTTPS with the embedded defaults: an embedded Kafka-compatible broker (Tansu, from "
        "the dev extra) and the consumers, SQLite in --cert-dir; prints the addresses.",
    )
    _server_flags(dev, plain_http=False)
    dev.add_argument(
        "--cert-dir",
        type=Path,
        default=Path(".tribunal-dev"),
        help="certificate, record and state [.tribunal-dev]",
    )
    dev.add_argument("--kafka-port", type=int, default=19092, help="embedded broker port [19092]")
    dev.add_argument("--no-kafka", action="store_true", help="no embedded broker, no consumers")
    dev.set_defaults(handler=_dev)

    demo = commands.add_parser(
        "demo",
        help="send the bundled examples to a running 'tribunal dev' and print the verdicts",
        description="Admission reviews go to /validate, Trivy reports to /ingest/trivy, Falco alerts to "
        "the falco-events topic (or /ingest/falco without Kafka); one line per verdict as it comes back. "
        "Reads the dev instance's address from <cert-dir>/dev.json. Exit 1 if a verdict is missing.",
    )
    demo.add_argument("examples", nargs="?", type=Path, default=Path("examples"), help="[examples]")
    demo.add_argument("--cert-dir", type=Path, default=Path(".tribunal-dev"), help="[.tribunal-dev]")
    demo.add_argument("--url", help="a server's base URL instead of the dev instance's")
    demo.add_argument("--cacert", type=Path, help="CA of --url's certificate")
    demo.set_defaults(handler=_demo)

    report = commands.add_parser(
        "report",
        help="export a compliance report from the record",
        description="Controls of a framework (rules/frameworks/<id>.yaml) by scope: pass, fail or not "
        "assessed, with the failing resources and their evidence. Exit 0, or 1 on an error.",
    )
    report.add_argument("--framework", required=True, help="cis-k8s, nsa-cisa, pss-baseline, pss-restricted")
    report.add_argument("--format", choices=list(FORMATS), default="json", help="output format [json]")
    report.add_argument("--namespace", help="one namespace only")
    report.add_argument("--since", help="subjects judged since: ISO 8601 time or a span (30d, 12h)")
    report.add_argument("-o", "--output", type=Path, help="write to FILE [stdout]")
    report.add_argument(
        "--database-url",
        help="[TRIBUNAL_DATABASE_URL; else the record of a tribunal dev started here (--cert-dir); else "
        "sqlite+aiosqlite:///tribunal.db]",
    )
    report.add_argument("--cert-dir", type=Path, default=Path(".tribunal-dev"), help="tribunal dev's folder")
    report.add_argument("--rules", type=Path, help="rules directory, for frameworks/ [bundled]")
    report.add_argument("--policies", type=Path, help="policy directory, for policy kinds [bundled]")
    report.set_defaults(handler=_report)

    consume = commands.add_parser(
        "consume",
        help="run only the Kafka consumers (scale out by running more in one group)",
        description="Consume the input topics as one member of the consumer group, judge, record and "
        "publish verdicts until SIGTERM or SIGINT, then stop gracefully (finish in-flight messages "
        "within TRIBUNAL_KAFKA_STOP_GRACE, commit, leave the group). Exit 1 when the consumer failed.",
    )
    consume.add_argument("--bootstrap-servers", help="Kafka brokers [TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS]")
    consume.add_argument("--topics", help="topic=kind,... [TRIBUNAL_KAFKA_TOPICS]")
    consume.add_argument("--group-id", help="consumer group [TRIBUNAL_KAFKA_GROUP_ID or tribunal]")
    consume.add_argument("--workers", type=int, help="judge processes; 0: in-process [one per core]")
    consume.add_argument("--policies", type=Path, help="policy directory [TRIBUNAL_POLICY_DIR or bundled]")
    consume.add_argument("--rules", type=Path, help="rules directory [TRIBUNAL_RULES_DIR or bundled]")
    consume.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port [off]")
    consume.set_defaults(handler=_consume)
    return parser


def _server_flags(command: argparse.ArgumentParser, plain_http: bool = True) -> None:
    """The flags of serve and dev (dev always serves HTTPS, with the certificate it makes)."""
    command.add_argument("--host", help="listen address [TRIBUNAL_HOST or 0.0.0.0]")
    command.add_argument("--port", type=int, help="listen port [TRIBUNAL_PORT or 8443]")
    required = " (required unless --plain-http)" if plain_http else " [the one dev makes in --cert-dir]"
    command.add_argument("--tls-cert-file", type=Path, help="PEM certificate" + required)
    command.add_argument("--tls-key-file", type=Path, help="PEM key of --tls-cert-file")
    if plain_http:
        command.add_argument(
            "--plain-http",
            action="store_true",
            default=None,
            help="serve plain HTTP without a certificate (behind a TLS-terminating proxy only)",
        )
    command.add_argument("--policies", type=Path, help="policy directory [bundled]")
    command.add_argument("--rules", type=Path, help="rules directory [bundled]")
    command.add_argument("--engine", choices=engine_names(), help="Rego backend [regorus]")
    command.add_argument(
        "--failure-policy", choices=["fail", "ignore"], help="when no verdict in time [fail]"
    )
    command.add_argument("--dry-run", action="store_true", default=None, help="judge and record, never deny")
    command.add_argument("--log-level", default="INFO", help="[INFO]")


def _server_settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return _settings(
        args,
        host=args.host,
        port=args.port,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
        plain_http=getattr(args, "plain_http", None),
        policy_dir=args.policies,
        rules_dir=args.rules,
        engine=args.engine,
        failure_policy=args.failure_policy,
        dry_run=args.dry_run,
        **extra,
    )


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _server_settings(args)
    try:
        server = build_server(settings)
    except ValueError as exc:
        print(f"tribunal serve: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        asyncio.run(serve(server, shutdown_delay=settings.shutdown_delay_seconds))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"tribunal serve: {_port_busy(settings)}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _port_busy(settings: Settings) -> str:
    return (
        f"port {settings.port} on {settings.host} is in use (another Tribunal?): choose another with "
        "--port or TRIBUNAL_PORT"
    )


def _port_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound on ``host`` now (a check before starting a child on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _dev(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    cert, key = args.cert_dir / "tls.crt", args.cert_dir / "tls.key"
    if not (cert.exists() and key.exists()):
        cert, key = generate_self_signed(args.cert_dir)
    args.host = args.host or "127.0.0.1"
    args.tls_cert_file = args.tls_cert_file or cert
    args.tls_key_file = args.tls_key_file or key
    broker = None
    extra: dict[str, object] = {
        "database_url": os.environ.get(
            "TRIBUNAL_DATABASE_URL", f"sqlite+aiosqlite:///{args.cert_dir / 'tribunal.db'}"
        ),
        "actions": {"state_dir": args.cert_dir / "state", "cluster": _dev_acts_on_cluster()},
        # A local playground: `tribunal demo` posts to ingest and reads verdicts without a token.
        "auth": {"anonymous": True},
    }
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("tribunal dev on %s: ingest, the read API and /metrics are open to anyone", args.host)
    if not args.no_kafka and not os.environ.get("TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS"):
        if not _port_free("127.0.0.1", args.kafka_port):
            print(
                f"tribunal dev: port {args.kafka_port} (the embedded Kafka broker) is in use (another "
                "`tribunal dev`?): choose another with --kafka-port, or run without Kafka: --no-kafka",
                file=sys.stderr,
            )
            return EXIT_ERROR
        broker = EmbeddedBroker(port=args.kafka_port)
        extra["kafka_bootstrap_servers"] = broker.bootstrap
    settings = _server_settings(args, **extra)

    async def run() -> None:
        if broker is not None:
            await broker.start()
        try:
            server = build_server(settings)

            await serve(server, on_ready=lambda: _announce(server, settings, args.cert_dir))
        finally:
            if broker is not None:
                await broker.stop()

    try:
        asyncio.run(run())
    except BrokerUnavailable as exc:
        print(f"tribunal: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"tribunal dev: {_port_busy(settings)}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _dev_acts_on_cluster() -> bool:
    """`tribunal dev` never acts on whatever ~/.kube/config points at: only on a cluster named
    explicitly (TRIBUNAL_ACTIONS__KUBECONFIG or TRIBUNAL_ACTIONS__KUBE_API_URL), or when
    TRIBUNAL_ACTIONS__CLUSTER says so."""
    explicit = os.environ.get("TRIBUNAL_ACTIONS__CLUSTER")
    if explicit is not None:
        return explicit.strip().lower() in ("1", "true", "yes", "on")
    return bool(
        os.environ.get("TRIBUNAL_ACTIONS__KUBECONFIG") or os.environ.get("TRIBUNAL_ACTIONS__KUBE_API_URL")
    )


def _announce(server: Server, settings: Settings, cert_dir: Path) -> None:
    """Print where everything listens, and leave it in <cert-dir>/dev.json for `tribunal demo`."""
    url = server.url
    target = DemoTarget(
        url=url,
        cafile=str(settings.tls_cert_file),
        kafka_bootstrap=settings.kafka_bootstrap_servers,
        database_url=settings.database_url,
    )
    (cert_dir / DEV_INFO).write_text(target.model_dump_json(indent=2))
    lines = [
        f"Tribunal dev on {url} (self-signed CA: {settings.tls_cert_file})",
        f"  webhook   POST {url}/validate",
        f"  ingest    POST {url}/ingest/falco  {url}/ingest/trivy",
        f"  read API  GET  {url}/verdicts  {url}/findings  {url}/reports/compliance",
        f"  health    GET  {url}/healthz  {url}/readyz  {url}/metrics",
    ]
    if settings.kafka_bootstrap_servers:
        topics = ", ".join(settings.kafka_topic_kinds())
        lines.append(
            f"  Kafka     {settings.kafka_bootstrap_servers}: consuming {topics}; "
            f"verdicts on {settings.kafka_verdict_topic}"
        )
    lines += [f"  record    {settings.database_url}", "  try       tribunal demo      (in another terminal)"]
    print("\n".join(lines), flush=True)


def _demo(args: argparse.Namespace) -> int:
    info_file = args.cert_dir / DEV_INFO
    if args.url:
        target = DemoTarget(
            url=args.url, cafile=str(args.cacert) if args.cacert else None, kafka_bootstrap=None
        )
    elif info_file.exists():
        target = DemoTarget.model_validate_json(info_file.read_text())
    else:
        print(f"tribunal: no {info_file}: start `tribunal dev` first, or give --url", file=sys.stderr)
        return EXIT_ERROR
    try:
        missing = asyncio.run(run_demo(target, args.examples, sys.stdout))
    except (OSError, aiohttp.ClientError) as exc:
        print(f"tribunal: cannot reach {target.url}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR if missing else EXIT_OK


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    return Settings.load(args.config, **{k: v for k, v in overrides.items() if v is not None})


def _judge(args: argparse.Namespace) -> int:
    settings = _settings(args, policy_dir=args.policies, rules_dir=args.rules, engine=args.engine)
    judge = build_policy_runtime(settings, args.data).judge
    kind = EvidenceKind(args.kind) if args.kind else None
    fail_on = Decision(args.fail_on) if args.fail_on else None
    out = sys.stdout
    table = _Table(out) if args.format == "table" else None
    sarif = JudgeSarif(judge.policy_set.policies) if args.format == "sarif" else None
    errors = reached = judged = 0
    skipped: list[str] = []
    paths = expand_paths(args.files, skipped)
    with Progress("judging", len(paths)) as progress:
        for path in skipped:
            progress.say(f"tribunal: skipped {path}: not an evidence file ({', '.join(EVIDENCE_SUFFIXES)})")
        for path in paths:
            for item in read_evidence(path, kind, settings.max_document_bytes):
                if isinstance(item, EvidenceError):
                    errors += 1
                    progress.say(f"tribunal: error: {item}")
                    if sarif is not None:
                        sarif.error(str(item))
                    continue
                try:
                    verdict = judge.judge(item)
                except PolicyError as exc:
                    errors += 1
                    progress.say(f"tribunal: error: {exc}")
                    if sarif is not None:
                        sarif.error(str(exc))
                    continue
                judged += 1
                if fail_on is not None and verdict.decision.rank >= fail_on.rank:
                    reached += 1
                if table is not None:
                    table.add(item.source, verdict)
                elif sarif is not None:
                    sarif.add(path, item, verdict)
                else:
                    out.write(verdict.model_dump_json() + "\n")
            progress.advance()
    if table is not None:
        table.close(errors)
    if sarif is not None:
        out.write(sarif.render().decode())
    if not judged and not errors and not args.allow_empty:
        where = ", ".join(args.files)
        print(
            f"tribunal: error: no evidence in {where} ({len(skipped)} files skipped); --allow-empty "
            "accepts that",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if errors:
        return EXIT_ERROR
    return EXIT_VERDICT if reached else EXIT_OK


class Progress:
    """A progress bar on stderr while ``total`` steps run (a spinner when the length is unknown, None),
    when stderr is a terminal and the work is long enough to watch (more than a few steps); silent
    otherwise (pipes, CI logs). ``say`` prints a line above the bar (errors, skipped files) instead of
    through it."""

    def __init__(self, what: str, total: int | None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._bar: Any = None
        self._task: Any = None
        if (total is None or total > 3) and self.stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as Bar

            console = Console(file=self.stream)
            if total is None:  # work of unknown length (a report over the record): a spinner and the time
                columns: tuple[Any, ...] = (SpinnerColumn(), TextColumn(what), TimeElapsedColumn())
            else:
                columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self._bar = Bar(*columns, console=console, transient=True)
            self._task = self._bar.add_task(what, total=total)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, steps)

    def say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=self.stream)


class _Table:
    """``--format table``: one row per verdict, its violations indented below, and a summary."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.counts = {d: 0 for d in Decision}
        out.write(f"{'DECISION':<9} {'KIND':<10} {'SUBJECT':<44} SOURCE\n")

    def add(self, source: str, verdict: Verdict) -> None:
        self.counts[verdict.decision] += 1
        subject = verdict.subject.key()
        self.out.write(f"{verdict.decision.value:<9} {verdict.kind.value:<10} {subject[:44]:<44} {source}\n")
        for v in verdict.violations:
            state = f"excepted: {v.exception}" if v.exception else v.enforcement.value
            self.out.write(f"{'':<9} - [{v.severity.value}/{state}] {v.policy}: {v.msg}\n")

    def close(self, errors: int) -> None:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {d.value}" for d, n in self.counts.items())
        self.out.write(f"\n{total} judged: {parts}; {errors} could not be judged\n")


def _consume(args: argparse.Namespace) -> int:
    settings = _settings(
        args,
        kafka_bootstrap_servers=args.bootstrap_servers,
        kafka_topics=args.topics,
        kafka_group_id=args.group_id,
        judge_workers=args.workers,
        policy_dir=args.policies,
        rules_dir=args.rules,
    )
    if not settings.kafka_bootstrap_servers:
        print(
            "tribunal: consume needs --bootstrap-servers or TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr
        )
        return EXIT_ERROR
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run_consumers(settings, metrics_port=args.metrics_port))


def _policy_test(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = args.directory or settings.policy_dir
    report = run_policy_tests(directory, args.data, args.run, allow_network=settings.policy_allow_network)
    for result in report.results:
        if not result.passed:
            print(f"FAIL {result.name} ({result.location})")
            if result.error:
                print(f"  {result.error}".replace("\n", "\n  "))
        elif args.verbose:
            print(f"PASS {result.name} ({result.duration_ms:.2f} ms)")
    for kind, reason in report.vm_refused.items():
        print(
            f"note: regorus's RVM cannot compile the {kind} policies, so TRIBUNAL_ENGINE=regorus will "
            "judge them on its interpreter (2-3x the time; docs/policies.md, Engines):"
        )
        print(f"  {reason}".replace("\n", "\n  "))
    print(f"{report.passed} passed, {report.failed} failed")
    return EXIT_ERROR if report.failed else EXIT_OK


def _policy_list(args: argparse.Namespace) -> int:
    settings = _settings(args, policy_dir=args.directory, rules_dir=args.rules)
    policy_set = load_policy_set(settings.policy_dir, allow_network=settings.policy_allow_network)
    enforcement = load_enforcement(settings.rules_dir)
    enforcement.check_policies(policy_set.policies)
    policies = sorted(policy_set.policies.values(), key=lambda p: (p.kind, p.path))
    rows = [
        {**p.model_dump(mode="json"), "enforcement": enforcement.resolve(p.id, p.enforcement).value}
        for p in policies
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if args.format == "markdown":
        print("| kind | policy | title | enforcement | severity | controls |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            controls = ", ".join(f"`{c}`" for c in r["controls"])
            cells = [r["kind"], f"`{r['id']}`", r["title"], r["enforcement"], r["severity"], controls]
            print("| " + " | ".join(cells) + " |")
        return EXIT_OK
    print(f"{'KIND':<10} {'POLICY':<32} {'ENFORCEMENT':<12} {'SEVERITY':<9} CONTROLS")
    for r in rows:
        controls = ", ".join(r["controls"])
        print(f"{r['kind']:<10} {r['id']:<32} {r['enforcement']:<12} {r['severity']:<9} {controls}")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    settings = _settings(args, database_url=args.database_url, rules_dir=args.rules, policy_dir=args.policies)
    dev_info = args.cert_dir / DEV_INFO
    if "database_url" not in settings.model_fields_set and dev_info.exists():
        # Nothing says which record: the one `tribunal dev` (started here) keeps.
        dev_url = DemoTarget.model_validate_json(dev_info.read_text()).database_url
        if dev_url:
            print(f"tribunal: reading the record of tribunal dev: {dev_url}", file=sys.stderr)
            settings = settings.model_copy(update={"database_url": dev_url})
    try:
        exporter = get_format(args.format)
        kinds = policy_kinds(settings)
        framework = load_framework(settings.rules_dir, args.framework, kinds)
        since = parse_since(args.since) if args.since else None
        url = make_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            raise OSError(f"database_url: {url.database} does not exist (nothing recorded there yet)")
        with Progress("reading the record", None):
            body = asyncio.run(_build_report(settings, framework, kinds, args.namespace, since, exporter))
    except (TribunalError, ValueError, OSError) as exc:
        print(f"tribunal: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.output is None:
        sys.stdout.buffer.write(body)
    else:
        args.output.write_bytes(body)
    return EXIT_OK


async def _build_report(
    settings: Settings, framework: Any, kinds: Any, namespace: str | None, since: Any, exporter: Any
) -> bytes:
    store = build_store(settings)
    await store.start()
    try:
        report = await build_report(store, framework, policy_kinds=kinds, namespace=namespace, since=since)
    finally:
        await store.stop()
    rendered: bytes = exporter.render(report)
    return rendered


if __name__ == "__main__":
    sys.exit(main())
