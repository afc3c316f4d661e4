"""Splice the table of the last fault-test run (.faults/table.md) into docs/reliability.md, between
``<!-- faults:begin -->`` and ``<!-- faults:end -->``: ``make reliability-doc`` (which runs the
fault tests first). Refuses a table with a failed test, or one from a partial run (fewer rows than
the fault tests it lists), unless ``--partial``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from tests.faults.ledger import PROJECT, TABLE

DOC = PROJECT / "docs" / "reliability.md"
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"


def splice(doc: str, table: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{DOC}: no {BEGIN} ... {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{table.rstrip()}\n{END}", doc, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--partial", action="store_true", help="splice a table of some fault tests only")
    args = parser.parse_args(argv)
    if not args.table.is_file():
        print(f"{args.table} is missing: run `pytest tests/faults` first", file=sys.stderr)
        return 1
    table = args.table.read_text()
    if "**failed**" in table:
        print(f"{args.table}: a fault test failed; not spliced", file=sys.stderr)
        return 1
    tests = {p.name for p in Path(__file__).parent.glob("test_*.py")}
    present = set(re.findall(r"`(test_[^`:]+\.py)::", table))
    if not args.partial and present != tests:
        print(f"{args.table}: no rows of {sorted(tests - present)}; run every fault test", file=sys.stderr)
        return 1
    args.doc.write_text(splice(args.doc.read_text(), table))
    print(f"spliced {table.count(chr(10)) - 2} rows into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
