"""``ketamine-clinic screen``: eligibility screening of a facts file against a protocol.

Exit codes: 0 eligible, 1 any other decision, 2 bad input (unreadable or invalid facts,
unknown condition id or diagnosis code, unknown protocol).
"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import json
from pathlib import Path
from typing import Any

from ketamine_clinic.errors import UsageError

# The clinical core is imported inside the handlers, so that ``--help`` stays light.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "screen",
        help="screen a patient's facts for eligibility under a protocol",
        description="Screen a patient's facts (a JSON file, see docs/screening.md) against a "
        "shipped protocol. Prints the decision and every reason with its source. "
        "Exit 0: eligible; 1: eligible with conditions, needs physician review or "
        "ineligible; 2: bad input.",
    )
    parser.add_argument("facts", nargs="?", metavar="FACTS.json", help="the patient's facts")
    parser.add_argument("--protocol", metavar="NAME", help="shipped protocol, e.g. clinic-standard")
    parser.add_argument("--version", type=int, metavar="V", help="shipped protocol version")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--vocabulary", action="store_true",
                        help="list the condition ids a facts file may use, and exit")
    parser.set_defaults(func=handle)


def _vocabulary(as_json: bool) -> int:
    from ketamine_clinic.clinical.protocol import condition_vocabulary

    vocabulary = condition_vocabulary()
    if as_json:
        print(json.dumps([{"id": c.id, "label": c.label, "question": c.question,
                           "group": c.group} for c in vocabulary.values()], indent=2))
        return 0
    width = max(len(c) for c in vocabulary)
    for c in vocabulary.values():
        print(f"{c.id:<{width}}  {c.group:<14}  {c.question}")
    return 0


def _read_facts(path_text: str) -> Any:
    path = Path(path_text)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise UsageError("FACTS.json", f"cannot read {path_text}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError("FACTS.json", f"{path_text} is not valid JSON: {exc}") from None


def handle(args: argparse.Namespace) -> int:
    from ketamine_clinic.clinical.protocol import load_protocol
    from ketamine_clinic.clinical.screening import Decision, facts_from_dict, screen

    if args.vocabulary:
        return _vocabulary(args.json)
    if args.protocol is None:
        raise UsageError("--protocol", "is required (e.g. --protocol clinic-standard)")
    if args.facts is None:
        raise UsageError("FACTS.json", "is required")
    protocol = load_protocol(args.protocol, args.version)
    facts = facts_from_dict(_read_facts(args.facts))
    result = screen(facts, protocol)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"Decision: {result.decision.value}")
        print(f"Protocol: {protocol.label} (sha256 {protocol.sha256[:12]})")
        print(f"Facts:    sha256 {facts.sha256[:12]}")
        for reason in result.reasons:
            print(f"\n[{reason.severity.value}] {reason.rule}")
            print(f"  {reason.message}")
            if reason.find_out:
                print(f"  Find out: {reason.find_out}")
            print(f"  Source: {reason.source}")
            if reason.overridable:
                print("  A physician may override this with a documented reason.")
    return 0 if result.decision is Decision.ELIGIBLE else 1
