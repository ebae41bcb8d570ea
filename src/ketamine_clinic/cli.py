"""The ``ketamine-clinic`` command line.

Each area of the product contributes its subcommands from a module in
``ketamine_clinic.commands``: the module exposes ``register(subparsers)`` which adds
parsers whose ``func`` attribute is a handler ``(args) -> int`` (the exit code).

Exit codes: 0 success, 1 a clinical "no" (ineligible, hard limit exceeded, check failed),
2 bad input (argparse errors and :class:`UsageError`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ketamine_clinic.errors import UsageError

# Order is the order shown in --help.
COMMAND_MODULES = (
    "ketamine_clinic.commands.web",
    "ketamine_clinic.commands.audit",
    "ketamine_clinic.commands.protocols",
    "ketamine_clinic.commands.screen",
    "ketamine_clinic.commands.dose",
    "ketamine_clinic.commands.pk",
    "ketamine_clinic.commands.report",
    "ketamine_clinic.commands.fhir",
    "ketamine_clinic.commands.stock",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ketamine-clinic",
        description="Ketamine infusion clinic: web app, protocols, screening, dosing, PK.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"ketamine-clinic {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
