"""The command line answers at once: ``--help`` and the light commands import neither Django
nor the heavy numeric libraries (issue 17). Times themselves are in benchmarks/bench_cli.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("django", "numpy", "scipy", "pint", "plotly", "ninja", "pydantic")

FACTS = {
    "age_years": 40, "sex_at_birth": "female", "pregnant": False, "weight_kg": 70,
    "diagnoses": ["G90.511"], "conditions": [], "medications": ["gabapentin"],
    "budapest": {"disproportionate_pain": True,
                 "symptoms": ["allodynia", "skin_colour_change", "oedema"],
                 "signs": ["allodynia", "oedema"], "no_better_diagnosis": True},
}


def heavy_modules_after(argv: list[str]) -> tuple[int, list[str]]:
    """Run the command in a fresh interpreter; its exit code and the heavy libraries loaded."""
    probe = (
        "import contextlib, io, json, sys\n"
        "from ketamine_clinic.cli import main\n"
        "code = 0\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        code = main({argv!r})\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    code, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    return code, heavy


@pytest.mark.parametrize("argv", [
    ["--help"], ["pk", "--help"], ["screen", "--help"], ["dose", "--help"],
    ["serve", "--help"], ["protocols", "list"], ["screen", "--vocabulary"],
])
def test_help_and_the_pure_core_commands_load_no_heavy_library(argv: list[str]) -> None:
    code, heavy = heavy_modules_after(argv)
    assert code == 0
    assert heavy == []


def test_screening_a_facts_file_loads_no_heavy_library(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(FACTS))
    code, heavy = heavy_modules_after(["screen", "--protocol", "clinic-standard", str(facts)])
    assert code in (0, 1)  # a decision, not a usage error
    assert heavy == []


def test_the_pk_command_offers_exactly_the_catalogues_drugs() -> None:
    from ketamine_clinic.commands.pk import drug_names
    from ketamine_clinic.pk.parameter_sets import catalogue

    assert drug_names() == sorted(catalogue().drugs)


def test_a_dose_call_loads_pint_without_numpy_or_scipy() -> None:
    # pint would import numpy and scipy (half of its import time) for array quantities
    # that the exact dosing core never makes.
    code, heavy = heavy_modules_after(["dose", "--protocol", "clinic-standard", "--weight-kg",
                                       "70", "--rate", "0.5 mg/kg/h", "--bag",
                                       "500 mg in 500 mL"])
    assert code == 0
    assert heavy == ["pint"]


def test_one_protocol_is_read_for_a_command_that_names_it() -> None:
    from ketamine_clinic.clinical.protocol import shipped as protocol

    protocol._shipped_versions.cache_clear()
    try:
        got = protocol.load_protocol("clinic-standard")
        assert got.name == "clinic-standard"
        assert protocol._shipped_versions.cache_info().currsize == 1
        assert got == max((p for p in protocol.shipped_protocols()
                           if p.name == "clinic-standard" and p.status.value != "draft"),
                          key=lambda p: p.version)
    finally:
        protocol._shipped_versions.cache_clear()
