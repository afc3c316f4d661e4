"""Secrets taken out of raw evidence before it is stored (docs/security.md, "Evidence at rest").

The store keeps every document it judged, for audit and for replay. Policies judge the document as it
arrived; what is written to the store is ``redact(kind, raw, mode)``: the same JSON, with the value of
every likely secret replaced by :data:`MARKER`. Keys, names, structure and every other value stay, so
the stored document is still valid evidence of its kind (it parses, and can be judged again).

``mode`` (``TRIBUNAL_EVIDENCE_REDACTION``):

- ``secrets`` (the default): the rules below;
- ``all-env``: the same, and the value of *every* ``env`` entry of a pod spec;
- ``none``: nothing is changed (labs, tests).

Admission (``request.object`` and ``request.oldObject``, or a bare manifest):

- a Secret: every value of ``data`` and ``stringData``, and the same inside its
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation (kubectl keeps the whole object
  there; an annotation that is not JSON is replaced whole);
- every pod spec (a Pod, or a workload's pod template: :data:`POD_SPEC_PATHS`), in ``containers``,
  ``initContainers`` and ``ephemeralContainers``: ``env[].value`` when the name looks like a secret
  (:func:`is_secret_name`), and the password of a URL with credentials in any env value
  (``postgres://app:<redacted>@db``); ``command`` and ``args`` go through :func:`redact_text`; a
  workload's last-applied-configuration annotation gets the same;
- ``valueFrom`` (a reference to a Secret, not its value) and ``envFrom`` are kept.

Falco: :func:`redact_text` on ``output`` and on every string in ``output_fields``.

Trivy: secret findings (``Results[].Secrets[]``, also under ``Resources[]`` of ``trivy k8s``): ``Match``,
and ``Content`` and ``Highlighted`` of ``Code.Lines[]``; Trivy Operator reports: ``report.secrets[].match``.
Rule, category, severity, title, target and line numbers stay.

The marker carries no hash of the value: an unkeyed hash of a short password can be tested against
guesses by anyone who reads the store, and a keyed one needs a key to keep away from it. What a hash
would tell (was it changed?) is not worth that.

Verdicts: :func:`redact_violations` (the store applies it to the violations of a verdict whose
evidence had something taken out).

Each kind first checks the raw bytes for what its rules look for (admission: ``"env"``, ``"Secret"``,
``"args"``, ``"command"``, the last-applied annotation; Falco: the keywords of :func:`redact_text`;
Trivy: ``"Secrets"`` / ``"secrets"``); a document with none of it is returned as the very same bytes,
without parsing (the common case). A document that changes is serialised again (compact JSON, keys in
their order). The producers write keys and keywords as plain ASCII (never ``\\u`` escapes of
letters), which those byte checks rely on. Every stored document was parsed with orjson to be judged,
so parsing it again here cannot fail; if it did, the bytes would be returned as they are."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import orjson

from tribunal.model.admission import CONTAINER_FIELDS, POD_SPEC_PATHS
from tribunal.model.evidence import EvidenceKind
from tribunal.model.verdict import Violation

MARKER = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class Redaction(StrEnum):
    """What :func:`redact` takes out (``TRIBUNAL_EVIDENCE_REDACTION``)."""

    SECRETS = "secrets"
    ALL_ENV = "all-env"
    NONE = "none"


# ---------------------------------------------------------------------------------------------------
# Names of environment variables

# Anywhere in the name, any case.
_SECRET_NAME_PARTS = re.compile(
    r"password|passwd|passphrase|secret|token|credential|private|api_?key|api-key|access_?key|auth|cookie",
    re.IGNORECASE,
)
# Whole words of the name (split at '_', '-', '.' and lower-to-upper case changes): too short or
# too common to look for inside other words (MONKEY, KEYCLOAK_URL).
_SECRET_NAME_WORDS = frozenset({"key", "pwd", "pass", "pw", "dsn"})
_WORD_BOUNDARY = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether an environment variable called ``name`` likely holds a secret: its name contains
    password, passwd, passphrase, secret, token, credential, private, api_key / apikey / api-key,
    access_key / accesskey, auth or cookie (any case), or one of its words is key, pwd, pass, pw or
    dsn. Errs on the side of redacting (AUTHOR_NAME, SSH_KEY_PATH are redacted too)."""
    if _SECRET_NAME_PARTS.search(name):
        return True
    return any(word.lower() in _SECRET_NAME_WORDS for word in _WORD_BOUNDARY.split(name))


# ---------------------------------------------------------------------------------------------------
# Free text: command lines, Falco outputs

# The keys of key=value pairs whose value is a secret: ending with one of these words.
_KEYWORD = (
    r"(?:pass(?:word|wd|phrase)|token|api[_.-]?key|access[_.-]?key|secret[_.-]?key|private[_.-]?key"
    r"|credentials?)"
)
# ... or with "secret" after a separator (client_secret, DJANGO_SECRET; not a bare secret=, which is
# how Falco's k8s_audit rules name a Secret object, nor -secret-dir).
_KEY = rf"(?:[\w.-]*?{_KEYWORD}|[\w.-]*[_.-]secret)"
_VALUE = r"""(?:"[^"]*"|'[^']*'|[^\s"',;&)\]}<>]+)"""

_PEM = re.compile(
    r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(?:(?!-----END).)+?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
    re.DOTALL,
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@\"']*:)([^/\s@\"']+)(@)")
_SCHEMES = ("bearer", "basic", "digest", "token", "negotiate")
_AUTHORIZATION = re.compile(
    rf"(?i)\b(authorization\s*[:=]\s*(?:(?:{'|'.join(_SCHEMES)})\s+)?)([^\s\"',;<>]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]{16,}=*)")
_KEY_VALUE = re.compile(rf"(?i)(?<![\w.-])([\"']?)({_KEY})\1(\s*[=:]\s*)({_VALUE})")
_FLAG_VALUE = re.compile(rf"(?i)(?<![\w.-])(--?{_KEY})(\s+)(?![-<])({_VALUE})")
_MYSQL = re.compile(
    r"(?<![\w.-])(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlsh|mariadb|mariadb-dump|mariadb-admin)"
    r"(?=\s)[^|;&\n]*"
)
_MYSQL_PASSWORD = re.compile(r"(?<!\S)-p(?!<redacted>)[^\s]+")
_TOKENS = re.compile(
    r"\b(?:"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub tokens
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWTs (service account tokens)
    r")\b"
)
# A text without any of these has nothing for redact_text: tested first, as plain substrings (a
# regular expression with these alternatives took 230 µs on a 3 KB review; these take 2).
_TRIGGER_WORDS = (
    "pass", "token", "key", "secret", "credential", "authorization", "bearer", "mysql", "mariadb",
)  # fmt: skip
_TRIGGER_CASED = ("AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "eyJ")
_TRIGGER_WORDS_BYTES = tuple(word.encode() for word in _TRIGGER_WORDS)
_TRIGGER_CASED_BYTES = tuple(word.encode() for word in _TRIGGER_CASED)
# user:password@ after a scheme (a literal prefix: the regular expression engine finds it fast); in
# JSON text "/" may be escaped.
_USERINFO = re.compile(r"://[^/\s\"'@]*:[^/\s\"'@]*@")
_USERINFO_BYTES = re.compile(rb"(?::/|:\\/\\)/[^/\s\"'@]*:[^/\s\"'@]*@")


def _may_hold_secrets(text: str) -> bool:
    """False when no rule of redact_text can match ``text``."""
    lowered = text.lower()
    return (
        any(word in lowered for word in _TRIGGER_WORDS)
        or any(word in text for word in _TRIGGER_CASED)
        or ("://" in text and _USERINFO.search(text) is not None)
    )


def _may_hold_secrets_bytes(raw: bytes) -> bool:
    """:func:`_may_hold_secrets` on JSON text."""
    lowered = raw.lower()
    return (
        any(word in lowered for word in _TRIGGER_WORDS_BYTES)
        or any(word in raw for word in _TRIGGER_CASED_BYTES)
        or _USERINFO_BYTES.search(raw) is not None
    )


def _keep_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return value[0] + MARKER + value[0]
    return MARKER


def _key_value(m: re.Match[str]) -> str:
    if m.group(4) in (MARKER, f'"{MARKER}"', f"'{MARKER}'"):
        return m.group(0)
    return m.group(1) + m.group(2) + m.group(1) + m.group(3) + _keep_quotes(m.group(4))


def _authorization(m: re.Match[str]) -> str:
    if m.group(2).lower() in _SCHEMES:  # "Authorization: Bearer <redacted>" already
        return m.group(0)
    return m.group(1) + MARKER


def _flag_value(m: re.Match[str]) -> str:
    if m.group(3) in (f'"{MARKER}"', f"'{MARKER}'"):
        return m.group(0)
    return m.group(1) + m.group(2) + _keep_quotes(m.group(3))


def _mysql(m: re.Match[str]) -> str:
    return _MYSQL_PASSWORD.sub("-p" + MARKER, m.group(0))


_TEXT_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_PEM, rf"\1{MARKER}\2"),
    (_URL_CREDENTIALS, rf"\1{MARKER}\3"),
    (_AUTHORIZATION, _authorization),
    (_BEARER, rf"\1{MARKER}"),
    (_KEY_VALUE, _key_value),
    (_FLAG_VALUE, _flag_value),
    (_MYSQL, _mysql),
    (_TOKENS, MARKER),
)


def redact_text(text: str) -> str:
    """``text`` (a command line, a Falco output) with its likely secrets replaced by :data:`MARKER`:

    - the body of a PEM private key block;
    - the password of a URL with credentials (``scheme://user:<redacted>@host``);
    - the credentials of an ``Authorization:`` header (after Bearer, Basic, ... when named), and any
      ``Bearer <token>`` of 16 characters or more;
    - the value of ``key=value``, ``key: value``, ``"key": "value"``, ``--key=value`` and
      ``--key value`` when the key ends with password, passwd, passphrase, token, api_key,
      access_key, secret_key, private_key, credential(s) (``-`` and ``.`` count as ``_``; any
      prefix: ``PGPASSWORD``, ``--db-password``), or with ``_secret`` / ``-secret``
      (``client_secret``; not a bare ``secret=``, which names a Secret object in Falco's k8s_audit
      outputs);
    - ``-p<password>`` in a mysql, mysqldump, mysqladmin, mysqlimport, mysqlsh or mariadb command;
    - AWS access key ids (``AKIA…``, ``ASIA…``), GitHub tokens (``ghp_…``, ``github_pat_…``), Slack
      tokens (``xoxb-…``) and JWTs (``eyJ….eyJ….…``) wherever they stand."""
    if not _may_hold_secrets(text):
        return text
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------------------------------------
# Documents


def redact(kind: EvidenceKind | str, raw: bytes, mode: Redaction | str = Redaction.SECRETS) -> bytes:
    """The raw JSON document ``raw`` of evidence ``kind`` as the store keeps it under ``mode``: the
    very same bytes when there is nothing to take out. A document that is not JSON is returned as
    it is (every stored document was parsed to be judged)."""
    if mode == Redaction.NONE:
        return raw
    screen, walk = _BY_KIND[EvidenceKind(kind)]
    if not screen(raw):
        return raw
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if isinstance(doc, dict) and walk(doc, Redaction(mode)):
        return orjson.dumps(doc)
    return raw


def redact_unjudged(
    raw: bytes, kind: EvidenceKind | str | None, mode: Redaction | str = Redaction.SECRETS
) -> bytes:
    """A document that could not be judged (a dead letter) under ``mode``: as :func:`redact` for its
    ``kind`` (every kind's rules when unknown); a document that is not JSON goes through
    :func:`redact_text` when it is UTF-8 text. The very same bytes when nothing changes."""
    if mode == Redaction.NONE or not raw:
        return raw
    kinds = [EvidenceKind(kind)] if kind is not None else list(EvidenceKind)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw  # binary junk: nothing the rules can read
        redacted = redact_text(text)
        return raw if redacted == text else redacted.encode()
    if not isinstance(doc, dict):
        return raw
    changed = False
    for each in kinds:
        screen, walk = _BY_KIND[each]
        if screen(raw):
            changed |= walk(doc, Redaction(mode))
    return orjson.dumps(doc) if changed else raw


def redact_verdict(kind: EvidenceKind | str, raw: bytes, mode: Redaction | str = Redaction.SECRETS) -> bytes:
    """A verdict's JSON (as published to the verdicts topic) with its violations redacted as
    :func:`redact_violations` redacts the stored ones. The very same bytes when nothing changes."""
    doc = _violations_to_redact(kind, raw, mode)
    violations = doc.get("violations") if isinstance(doc, dict) else None
    if not isinstance(violations, list) or not _redact_violation_list(kind, violations, raw):
        return raw
    return orjson.dumps(doc)


def redact_violation_texts(violations: tuple[Violation, ...]) -> tuple[Violation, ...]:
    """``violations`` with every string of their messages and details through :func:`redact_text`:
    what actions send out of Tribunal (alerts, annotations, Events). The very same tuple when
    nothing changes (the common case: one screen of each message)."""
    if not any(_may_hold_secrets(v.msg) or _may_hold_secrets(repr(v.details)) for v in violations):
        return violations
    out: list[Violation] = []
    for violation in violations:
        details = copy.deepcopy(violation.details)
        changed = _redact_nested_strings(details)
        msg = redact_text(violation.msg)
        if changed or msg != violation.msg:
            violation = violation.model_copy(update={"msg": msg, "details": details})
        out.append(violation)
    return tuple(out)


def redact_violations(
    kind: EvidenceKind | str, raw: bytes, mode: Redaction | str = Redaction.SECRETS
) -> bytes:
    """A verdict's violations (the JSON list the store keeps) under ``mode``: their messages and
    details quote the evidence (a Falco alert's command line and output; a Trivy secret finding's
    match), so every string value (not key) goes through :func:`redact_text`, and on a Trivy verdict
    each violation's ``details.match`` becomes :data:`MARKER`. The very same bytes when nothing
    changes."""
    doc = _violations_to_redact(kind, raw, mode)
    if not isinstance(doc, list) or not _redact_violation_list(kind, doc, raw):
        return raw
    return orjson.dumps(doc)


def _violations_to_redact(kind: EvidenceKind | str, raw: bytes, mode: Redaction | str) -> Any:
    """``raw`` parsed, when it may hold something to redact under ``mode``; else None (the common
    case: a byte screen, no parsing)."""
    if mode == Redaction.NONE:
        return None
    trivy = EvidenceKind(kind) is EvidenceKind.TRIVY and b'"match"' in raw
    if not trivy and not _may_hold_secrets_bytes(raw):
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _redact_violation_list(kind: EvidenceKind | str, violations: list[Any], raw: bytes) -> bool:
    """Redact ``violations`` (parsed from ``raw``) in place; whether anything changed."""
    changed = False
    if EvidenceKind(kind) is EvidenceKind.TRIVY and b'"match"' in raw:
        for violation in violations:
            details = violation.get("details") if isinstance(violation, dict) else None
            if isinstance(details, dict) and details.get("match") not in (None, "", MARKER):
                details["match"] = MARKER
                changed = True
    return _redact_nested_strings(violations) or changed


def _redact_nested_strings(root: dict[str, Any] | list[Any]) -> bool:
    """Every string in ``root``, at any depth, through :func:`redact_text`, in place (no recursion)."""
    changed = False
    stack: list[dict[str, Any] | list[Any]] = [root]
    while stack:
        node = stack.pop()
        keys = node.keys() if isinstance(node, dict) else range(len(node))
        for key in keys:
            value = node[key]  # type: ignore[index]
            if isinstance(value, str):
                redacted = redact_text(value)
                if redacted != value:
                    node[key] = redacted  # type: ignore[index]
                    changed = True
            elif isinstance(value, dict | list):
                stack.append(value)
    return changed


def _admission_screen(raw: bytes) -> bool:
    return (
        b'"env"' in raw
        or b'"Secret"' in raw
        or b'"args"' in raw
        or b'"command"' in raw
        or b"last-applied-configuration" in raw
    )


def _falco_screen(raw: bytes) -> bool:
    return _may_hold_secrets_bytes(raw)


def _trivy_screen(raw: bytes) -> bool:
    return b'"Secrets"' in raw or b'"secrets"' in raw


def _redact_admission(doc: dict[str, Any], mode: Redaction) -> bool:
    request = doc.get("request")
    if isinstance(request, dict):
        changed = False
        request_kind = request.get("kind")
        fallback = request_kind.get("kind") if isinstance(request_kind, dict) else None
        for key in ("object", "oldObject"):
            obj = request.get(key)
            if isinstance(obj, dict):
                changed |= _redact_object(obj, mode, fallback)
        return changed
    if isinstance(doc.get("kind"), str) and isinstance(doc.get("metadata"), dict):
        return _redact_object(doc, mode, None)  # a bare manifest, judged as if created
    return False


def _redact_object(obj: dict[str, Any], mode: Redaction, fallback_kind: Any, nested: bool = False) -> bool:
    """Redact a Kubernetes object in place; whether anything changed. ``nested``: ``obj`` came from
    a last-applied-configuration annotation (whose own annotations are not looked into again)."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        kind = fallback_kind if isinstance(fallback_kind, str) else ""
    changed = False
    secret = kind == "Secret"
    if secret:
        for field in ("data", "stringData"):
            values = obj.get(field)
            if isinstance(values, dict):
                for key, value in values.items():
                    if value not in (None, "", MARKER):
                        values[key] = MARKER
                        changed = True
            elif values not in (None, "", MARKER):
                obj[field] = MARKER
                changed = True
    path = POD_SPEC_PATHS.get(kind)
    if path is not None:
        node: Any = obj
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            changed |= _redact_pod_spec(node, mode)
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not nested and (secret or path is not None) and isinstance(annotations, dict):
        applied = annotations.get(LAST_APPLIED)
        if isinstance(applied, str):
            redacted = _redact_last_applied(applied, mode, kind, secret)
            if redacted is not applied:
                annotations[LAST_APPLIED] = redacted
                changed = True
    return changed


def _redact_last_applied(text: str, mode: Redaction, kind: str, secret: bool) -> str:
    """The annotation redacted as its object is; ``text`` itself when nothing changed."""
    try:
        applied = orjson.loads(text)
    except orjson.JSONDecodeError:
        return MARKER if secret and text != MARKER else text
    if isinstance(applied, dict):
        if _redact_object(applied, mode, kind, nested=True):
            return orjson.dumps(applied).decode()
        return text
    return MARKER if secret else text


def _redact_pod_spec(spec: dict[str, Any], mode: Redaction) -> bool:
    changed = False
    every_env = mode is Redaction.ALL_ENV
    for field in CONTAINER_FIELDS:
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        for container in containers:
            if not isinstance(container, dict):
                continue
            env = container.get("env")
            if isinstance(env, list):
                for entry in env:
                    if not isinstance(entry, dict):
                        continue
                    value = entry.get("value")
                    if value is None or value == "" or value == MARKER:
                        continue
                    name = entry.get("name")
                    if every_env or not isinstance(name, str) or is_secret_name(name):
                        entry["value"] = MARKER
                        changed = True
                    elif isinstance(value, str) and "://" in value:
                        redacted = _URL_CREDENTIALS.sub(rf"\1{MARKER}\3", value)
                        if redacted != value:
                            entry["value"] = redacted
                            changed = True
            for key in ("command", "args"):
                words = container.get(key)
                if isinstance(words, list):
                    changed |= _redact_strings_in_list(words)
    return changed


def _redact_strings_in_list(items: list[Any]) -> bool:
    if not _may_hold_secrets("\n".join(item for item in items if isinstance(item, str))):
        return False  # one test for the whole command line
    changed = False
    for i, item in enumerate(items):
        if isinstance(item, str):
            redacted = redact_text(item)
            if redacted != item:
                items[i] = redacted
                changed = True
    return changed


def _redact_falco(doc: dict[str, Any], _mode: Redaction) -> bool:
    changed = False
    output = doc.get("output")
    if isinstance(output, str):
        redacted = redact_text(output)
        if redacted != output:
            doc["output"] = redacted
            changed = True
    fields = doc.get("output_fields")
    if isinstance(fields, dict | list):
        changed |= _redact_nested_strings(fields)
    return changed


def _redact_trivy(doc: dict[str, Any], _mode: Redaction) -> bool:
    if isinstance(doc.get("apiVersion"), str):  # a Trivy Operator resource
        report = doc.get("report")
        found = report.get("secrets") if isinstance(report, dict) else None
        changed = False
        for item in found if isinstance(found, list) else []:
            if isinstance(item, dict) and item.get("match") not in (None, MARKER):
                item["match"] = MARKER
                changed = True
        return changed
    holders: list[Any] = [doc]  # a report, or the resources of a `trivy k8s` report
    for key in ("Resources", "Vulnerabilities", "Misconfigurations"):
        resources = doc.get(key)
        if isinstance(resources, list):
            holders.extend(resources)
    changed = False
    for holder in holders:
        results = holder.get("Results") if isinstance(holder, dict) else None
        for result in results if isinstance(results, list) else []:
            found = result.get("Secrets") if isinstance(result, dict) else None
            for item in found if isinstance(found, list) else []:
                if isinstance(item, dict):
                    changed |= _redact_trivy_secret(item)
    return changed


def _redact_trivy_secret(item: dict[str, Any]) -> bool:
    changed = False
    if item.get("Match") not in (None, MARKER):
        item["Match"] = MARKER
        changed = True
    code = item.get("Code")
    lines = code.get("Lines") if isinstance(code, dict) else None
    for line in lines if isinstance(lines, list) else []:
        if not isinstance(line, dict):
            continue
        for key in ("Content", "Highlighted"):
            if line.get(key) not in (None, "", MARKER):
                line[key] = MARKER
                changed = True
    return changed


_BY_KIND: dict[EvidenceKind, tuple[Callable[[bytes], bool], Callable[[dict[str, Any], Redaction], bool]]] = {
    EvidenceKind.ADMISSION: (_admission_screen, _redact_admission),
    EvidenceKind.FALCO: (_falco_screen, _redact_falco),
    EvidenceKind.TRIVY: (_trivy_screen, _redact_trivy),
}
