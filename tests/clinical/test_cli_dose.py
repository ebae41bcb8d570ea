"""The ``ketamine-clinic dose`` command, with hand-built rules (numbers stated here)."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from ketamine_clinic import cli
from ketamine_clinic.clinical.dosing import DosingRules, ProtocolRef, WeightBasis
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.units import RateForm
from ketamine_clinic.commands import dose

HARD, SOFT = LimitKind.HARD, LimitKind.SOFT

RULES = {
    # fixed-rate, like the clinic page (usual 60 mg/h), with the guideline's per-kg range
    "fixed": DosingRules(
        protocol=ProtocolRef("fixed", "3"),
        dosing_basis=RateForm.MG_PER_H,
        usual_rate=Fraction(60),
        allowed_concentrations_mg_per_ml=(Fraction(1), Fraction(2)),
        limits=(
            Limit("rate_mg_per_kg_per_h", HARD, None, 2.0, "S2"),
            Limit("rate_mg_per_h", SOFT, None, 100.0, "clinic policy"),
            Limit("session_total_mg", HARD, None, 500.0, "clinic policy"),
        ),
        max_weight_age_days=30,
    ),
    # weight-based, on adjusted weight
    "adjusted": DosingRules(
        protocol=ProtocolRef("adjusted", "1"),
        dosing_basis=RateForm.MG_PER_KG_PER_H,
        usual_rate=Fraction("0.35"),
        allowed_concentrations_mg_per_ml=(Fraction(1),),
        limits=(Limit("rate_mg_per_h", HARD, None, 25.0, "S9"),),
        max_weight_age_days=30,
        weight_basis=WeightBasis.ADJUSTED,
    ),
}


@pytest.fixture(autouse=True)
def hand_built_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> DosingRules:
        if name not in RULES:
            from ketamine_clinic.errors import UsageError

            raise UsageError("protocol", f"no protocol named {name!r}")
        return RULES[name]

    monkeypatch.setattr(dose, "rules_for_protocol", lookup)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["dose", *argv])
    out, err = capsys.readouterr()
    return code, out, err


BASE = ("--protocol", "fixed", "--weight-kg", "70", "--bag", "500 mg in 500 mL")


def test_it_prints_every_form_of_the_rate_and_the_limit_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, *BASE, "--rate", "60 mg/h")
    assert code == 0
    # 60 mg/h for 70 kg = 0.857 mg/kg/h; at 1 mg/mL the pump runs 60 mL/h
    assert "0.857 mg/kg/h" in out
    assert "60 mg/h" in out
    assert "60 mL/h" in out
    assert "rate_mg_per_kg_per_h" in out
    assert "OK: within every limit" in out


def test_json_output_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *BASE, "--rate", "0.5 mg/kg/h", "--json")
    record = json.loads(out)
    assert code == 0
    assert record["rate_mg_per_kg_per_h"] == 0.5
    assert record["rate_mg_per_h"] == 35.0
    assert record["pump_rate_ml_per_h"] == 35.0
    assert record["concentration_mg_per_ml"] == 1.0
    first = record["limits"][0]
    assert {k: first[k] for k in ("limit", "kind", "status", "bound", "value")} == {
        "limit": "rate_mg_per_kg_per_h",
        "kind": "hard",
        "status": "ok",
        "bound": 2.0,
        "value": 0.5,
    }
    assert record["protocol"] == {"name": "fixed", "version": "3"}
    assert record["inputs"]["rate"]["text"] == "0.5 mg/kg/h"


def test_a_soft_limit_exceeded_exits_zero_and_says_it_needs_an_override(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, *BASE, "--rate", "110 mg/h")
    assert code == 0
    assert "SOFT LIMIT EXCEEDED" in out


def test_a_hard_limit_exceeded_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *BASE, "--rate", "2.1 mg/kg/h", "--json")
    assert code == 1
    record = json.loads(out)
    assert record["outcome"] == "blocked"
    assert [c["status"] for c in record["limits"]] == ["exceeded", "exceeded"]


def test_a_duration_checks_the_session_total(capsys: pytest.CaptureFixture[str]) -> None:
    # 90 mg/h × 6 h = 540 mg > 500 mg hard
    code, out, _ = run(capsys, *BASE, "--rate", "90 mg/h", "--duration", "6 h", "--json")
    assert code == 1
    totals = [c for c in json.loads(out)["limits"] if c["limit"] == "session_total_mg"]
    assert totals[0]["value"] == 540.0


def test_a_pump_rate_typed_as_the_mg_per_h_number_asks_for_confirmation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "--protocol", "fixed", "--weight-kg", "70", "--bag", "500 mg in 250 mL",
        "--rate", "60 mL/h",
    )  # fmt: skip
    assert code == 0
    assert "CONFIRM: a wrong-unit guard" in out
    assert "pump_rate_equals_mg_per_h" in out


def test_adjusted_weight_needs_height_and_sex_and_uses_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ("--protocol", "adjusted", "--weight-kg", "120", "--bag", "100 mg in 100 mL")
    code, _, err = run(capsys, *args, "--rate", "0.2 mg/kg/h")
    assert code == 2
    assert "--height-cm" in err
    code, out, _ = run(
        capsys, *args, "--rate", "0.2 mg/kg/h", "--height-cm", "177.8", "--sex", "male", "--json"
    )
    # IBW 73 kg, adjusted 91.8 kg; 0.2 × 91.8 = 18.36 mg/h
    record = json.loads(out)
    assert record["dosing_weight"]["weight_kg"] == pytest.approx(91.8)
    assert record["rate_mg_per_h"] == pytest.approx(18.36)
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("--weight-kg", "0"), "--weight-kg"),
        (("--weight-kg", "-70"), "--weight-kg"),
        (("--weight-kg", "seventy"), "--weight-kg"),
        (("--weight-kg", "900"), "--weight-kg"),
        (("--rate", "60"), "--rate"),
        (("--rate", "60 furlongs"), "--rate"),
        (("--rate", "0 mg/h"), "--rate"),
        (("--bag", "500 mg in 0 mL"), "--bag"),
        (("--bag", "500 mg in 100 mL"), "--bag"),  # 5 mg/mL: not allowed
        (("--protocol", "nonesuch"), "--protocol"),
        (("--duration", "-1 h"), "--duration"),
    ],
)
def test_bad_input_exits_two_naming_the_option(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, str], option: str
) -> None:
    args = dict(zip(BASE[::2], BASE[1::2], strict=True)) | {"--rate": "60 mg/h"}
    args[argv[0]] = argv[1]
    code, out, err = run(capsys, *(x for kv in args.items() for x in kv))
    assert code == 2
    assert option in err
    assert out == ""


def test_it_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["dose", "--help"])
    assert exc.value.code == 0
    assert "--weight-kg" in capsys.readouterr().out
