"""``ketamine-clinic protocols``: list the shipped protocols, show one with its sources,
compare two versions.

Exit codes: 0 success, 2 bad input (unknown protocol or version).
"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import json
from typing import TYPE_CHECKING, Any

from ketamine_clinic.errors import UsageError

# The clinical core is imported inside the handlers, so that ``--help`` stays light.
if TYPE_CHECKING:
    from ketamine_clinic.clinical.protocol import Protocol, Row


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "protocols",
        help="list, show and compare the shipped infusion protocols",
        description="The infusion protocols shipped with the software, every number with "
        "its source. Published versions in the web app may be newer.",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    lst = sub.add_parser("list", help="list shipped protocols and versions",
                         description="List every shipped protocol version.")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=handle_list)

    show = sub.add_parser("show", help="show one protocol, every value with its source",
                          description="Show a protocol as (key, value, unit, source) rows, "
                          "followed by the full citations of the sources it uses.")
    show.add_argument("name", metavar="NAME", help="protocol name, e.g. clinic-standard")
    show.add_argument("--version", type=int, metavar="V",
                      help="shipped version (default: the newest that is not a draft)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=handle_show)

    diff = sub.add_parser("diff", help="compare two protocols or versions",
                          description="Key paths whose value, unit or source differ. "
                          "Each side is NAME or NAME@VERSION.")
    diff.add_argument("old", metavar="OLD", help="e.g. clinic-standard@1")
    diff.add_argument("new", metavar="NEW", help="e.g. clinic-standard@2 or consensus-2018")
    diff.add_argument("--json", action="store_true", help="print JSON")
    diff.set_defaults(func=handle_diff)

    schema = sub.add_parser("schema", help="print the JSON Schema of the protocol format",
                            description="The JSON Schema of the protocol file format, as "
                            "published in docs/protocol-format.schema.json (for editors that "
                            "check TOML against a schema).")
    schema.set_defaults(func=handle_schema)


def handle_list(args: argparse.Namespace) -> int:
    from ketamine_clinic.clinical.protocol import shipped_protocols

    protocols = shipped_protocols()
    if args.json:
        print(json.dumps([{**p.ref, "title": p.title, "status": p.status.value}
                          for p in protocols], indent=2))
        return 0
    width = max(len(p.name) for p in protocols)
    print(f"{'NAME':<{width}}  VERSION  STATUS   TITLE")
    for p in protocols:
        print(f"{p.name:<{width}}  {p.version:>7}  {p.status.value:<7}  {p.title}")
    return 0


def _value_text(row: Row) -> str:
    if isinstance(row.value, tuple):
        return ", ".join(_scalar_text(v) for v in row.value)
    return _scalar_text(row.value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def handle_show(args: argparse.Namespace) -> int:
    from ketamine_clinic.clinical.protocol import load_protocol, protocol_rows, references

    protocol = load_protocol(args.name, args.version)
    rows = protocol_rows(protocol)
    cited = _cited(protocol)
    if args.json:
        print(json.dumps({**protocol.ref, "title": protocol.title,
                          "status": protocol.status.value,
                          "rows": [r.to_dict() for r in rows],
                          "references": {k: references()[k].citation for k in cited}},
                         indent=2, ensure_ascii=False))
        return 0
    print(f"{protocol.title}")
    print(f"{protocol.label}  ({protocol.status.value})  sha256 {protocol.sha256}")
    print()
    for row in rows:
        if row.path in ("format", "name", "version", "title", "status"):
            continue
        unit = f" {row.unit}" if row.unit else ""
        print(f"{row.path} = {_value_text(row)}{unit}")
        if row.source:
            print(f"    source: {row.source}")
        if row.note:
            print(f"    note: {row.note}")
    print()
    print("Sources")
    for key in cited:
        print(f"  [{key}] {references()[key].citation}")
    return 0


def _cited(protocol: Protocol) -> list[str]:
    from ketamine_clinic.clinical.protocol import protocol_rows, source_keys

    keys: dict[str, None] = {}
    for row in protocol_rows(protocol):
        for text in (row.source, row.note):
            keys.update(dict.fromkeys(source_keys(text)))
    return list(keys)


def _side(text: str, field: str) -> Protocol:
    from ketamine_clinic.clinical.protocol import load_protocol

    name, _, version = text.partition("@")
    if version and not version.isdigit():
        raise UsageError(field, f"version must be a whole number, got {version!r}")
    return load_protocol(name, int(version) if version else None)


def handle_diff(args: argparse.Namespace) -> int:
    from ketamine_clinic.clinical.protocol import protocol_diff

    old, new = _side(args.old, "OLD"), _side(args.new, "NEW")
    rows = protocol_diff(old, new)
    if args.json:
        print(json.dumps({"old": old.ref, "new": new.ref, "rows": [r.to_dict() for r in rows]},
                         indent=2, ensure_ascii=False))
        return 0
    print(f"{old.label} -> {new.label}: {len(rows)} difference(s)")
    for d in rows:
        before = "" if d.old is None else f"{_value_text(d.old)} {d.old.unit}".strip()
        after = "" if d.new is None else f"{_value_text(d.new)} {d.new.unit}".strip()
        if d.old is not None and d.new is not None and before == after:
            before, after = f"source {d.old.source!r}", f"{d.new.source!r}"
        print(f"{d.change:>8}  {d.path}: {before or '-'}  ->  {after or '-'}")
    return 0


def handle_schema(args: argparse.Namespace) -> int:
    from ketamine_clinic.clinical.protocol.format import format_json_schema

    print(json.dumps(format_json_schema(), indent=2, sort_keys=True))
    return 0
