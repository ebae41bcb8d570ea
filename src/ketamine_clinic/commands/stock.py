"""The controlled-substance record on the command line: ``stock inventory`` prints (or
writes as PDF/CSV) the site's inventory, ``stock verify`` recomputes the ledger's chains.

``stock inventory --site S`` shows the latest inventory taken at site S (from a blind
count). Exit codes: 0 fine, 1 a chain is broken, 2 bad input.
"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
import sys
from pathlib import Path

from ketamine_clinic.commands.django_setup import add_data_dir, setup_django
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.actions import AuditAction


def cmd_stock_inventory(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.accounts.models import Site
    from ketamine_clinic.web.audit.services import Actor, audit_record
    from ketamine_clinic.web.stock import exports
    from ketamine_clinic.web.stock.models import Inventory

    site = Site.objects.filter(code=args.site).first()
    if site is None:
        raise UsageError("--site", f"no site with code {args.site!r}")
    inv = Inventory.objects.filter(site=site).select_related("taken_by").first()
    if inv is None:
        raise UsageError("--site", f"{site.name} has no inventory yet; take one with a count "
                                   "on the Stock pages")
    audit_record(actor=Actor(user=None, site_code=site.code),
                 action=AuditAction.STOCK_INVENTORY_EXPORT,
                 object_type="inventory", object_id=inv.pk,
                 detail={"pdf": bool(args.pdf), "csv": bool(args.csv)})
    if args.pdf:
        Path(args.pdf).write_bytes(exports.pdf_bytes("stock/inventory_print.html",
                                                     {"inv": inv, "lines": inv.lines}))
        print(f"wrote {args.pdf}")
    if args.csv:
        text = exports.inventory_csv(inv)
        if args.csv == "-":
            sys.stdout.write(text)
        else:
            Path(args.csv).write_text(text)
            print(f"wrote {args.csv}")
    if not args.pdf and not args.csv:
        reg = inv.registrant
        print(f"{inv.kind} inventory of {reg.get('name')} (DEA {reg.get('dea_number')}), "
              f"{inv.taken_on} at the {'opening' if inv.business_moment == 'opening' else 'close'}"
              f" of business, taken by {inv.taken_by.display_name}")
        for line in inv.lines:
            print(f"  {line['product']} {line['strength_mg_per_ml']} mg/mL "
                  f"{line['container_volume_ml']} mL vial, lot {line['lot']} "
                  f"(exp. {line['expires_on']}{', EXPIRED' if line['expired'] else ''}): "
                  f"{line['full_containers']} full, {line['opened_containers']} opened "
                  f"({line['opened_ml']} mL), {line['total_mg']} mg")
        if not inv.lines:
            print("  zero inventory")
    return 0


def cmd_stock_verify(args: argparse.Namespace) -> int:
    setup_django(args.data_dir)
    from ketamine_clinic.web.stock.services import stock_verify

    report = stock_verify()
    broken = False
    for code, problems in report.items():
        if problems:
            broken = True
            print(f"{code}: chain broken")
            for p in problems:
                print(f"  entry {p.seq}: {p.problem}")
        else:
            print(f"{code}: chain intact")
    if not report:
        print("no stock ledger yet")
    return 1 if broken else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stock", help="controlled-substance record: inventory, verify",
                       description="The ketamine (Schedule III) stock record.")
    stock_sub = p.add_subparsers(dest="stock_command", metavar="SUBCOMMAND", required=True)
    inv = stock_sub.add_parser("inventory", help="the site's latest inventory (PDF, CSV)")
    inv.add_argument("--site", required=True, help="site code")
    inv.add_argument("--pdf", metavar="FILE", help="write the printable inventory as PDF")
    inv.add_argument("--csv", metavar="FILE", help="write it as CSV ('-' for stdout)")
    add_data_dir(inv)
    inv.set_defaults(func=cmd_stock_inventory)
    ver = stock_sub.add_parser("verify", help="recompute the ledger's hash chains; exit 1 "
                                              "if any entry was altered, removed or reordered")
    add_data_dir(ver)
    ver.set_defaults(func=cmd_stock_verify)
