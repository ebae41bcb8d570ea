"""The protocol format: shipped protocols, validation errors, versions, rows and diffs."""

from __future__ import annotations

from fractions import Fraction
from importlib import resources

import pytest

from ketamine_clinic.clinical.limits import LimitKind
from ketamine_clinic.clinical.protocol import (
    DosingBasis,
    ProtocolStatus,
    load_protocol,
    load_protocol_text,
    protocol_diff,
    protocol_rows,
    references,
    shipped_protocols,
    source_keys,
    source_problem,
)
from ketamine_clinic.clinical.screening import facts_from_dict, screen
from ketamine_clinic.errors import UsageError


def clinic_text() -> str:
    folder = resources.files("ketamine_clinic.protocols")
    return folder.joinpath("clinic-standard.v1.toml").read_text("utf-8")


# The version number of the shipped clinic-standard.toml (the current version).
CURRENT = load_protocol_text(clinic_text(), "clinic-standard.toml").version


def edited(old: str, new: str) -> str:
    text = clinic_text()
    assert old in text, old  # the edit must hit the file, or the test proves nothing
    return text.replace(old, new, 1)


def test_the_three_protocols_are_shipped_and_load() -> None:
    names = {p.name for p in shipped_protocols()}
    assert names == {"clinic-standard", "schwartzman-2009", "consensus-2018"}


def test_every_number_in_every_shipped_protocol_has_a_source() -> None:
    for protocol in shipped_protocols():
        for row in protocol_rows(protocol):
            values = row.value if isinstance(row.value, tuple) else (row.value,)
            numeric = any(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if numeric and row.path not in ("format", "version"):
                assert row.source.strip(), f"{protocol.name}:{row.path} has no source"


def test_every_cited_key_is_in_the_references_file() -> None:
    for protocol in shipped_protocols():
        for row in protocol_rows(protocol):
            for key in source_keys(row.source):
                assert key in references(), (protocol.name, row.path, key)


def test_the_clinic_standard_follows_the_clinic_page() -> None:
    p = load_protocol("clinic-standard")
    assert p.dosing.dosing_basis is DosingBasis.FIXED
    assert p.dosing.start_rate.value == 60
    assert p.dosing.start_rate.unit == "mg/h"
    glyco = p.premedications[0]
    assert (glyco.drug, glyco.dose.value, glyco.dose.unit, glyco.route) == (
        "glycopyrrolate", Fraction(2, 10), "mg", "IV")
    assert "clinic-page" in glyco.dose.source
    ids = {r.id for r in p.screening.rules}
    assert {"age_minimum", "age_elderly", "pregnancy"} <= ids
    assert p.screening.rule("age_minimum").threshold_years is not None
    assert p.screening.rule("age_minimum").threshold_years.value == 18
    # The elderly exclusion is the clinic's own rule and is labelled so.
    assert p.screening.rule("age_elderly").source.startswith("clinic policy (set by the clinic")


def test_sixty_mg_per_h_at_70_kg_is_inside_the_guideline_hard_limit() -> None:
    p = load_protocol("clinic-standard")
    (hard,) = [lim for lim in p.limits_for("rate_mg_per_kg_per_h") if lim.kind is LimitKind.HARD]
    per_kg = 60 / 70  # 0.857 mg/kg/h, the fact sheet's derived figure
    assert per_kg == pytest.approx(0.86, abs=0.005)
    assert hard.upper == 2
    assert per_kg < hard.upper
    assert hard.source.startswith("S2")


def test_the_schwartzman_protocol_has_the_published_regimen() -> None:
    p = load_protocol("schwartzman-2009")
    assert p.dosing.dosing_basis is DosingBasis.WEIGHT
    assert p.dosing.start_rate.value == Fraction(35, 100) == p.dosing.max_rate.value
    assert p.dosing.titration_step is None
    assert p.dosing.planned_duration_min.value == 4 * 60
    assert p.series.sessions.value == 10
    caps = {(lim.quantity, lim.kind): lim.upper for lim in p.limits}
    assert caps[("rate_mg_per_h", LimitKind.HARD)] == 25
    assert caps[("rate_mg_per_kg_per_h", LimitKind.HARD)] == Fraction("0.35")
    meds = {(m.drug, m.dose.value, m.route, None if m.times is None else m.times.value)
            for m in p.premedications}
    assert meds == {("midazolam", 2, "IV", 2), ("clonidine", Fraction(1, 10), "PO", None)}


def test_the_consensus_protocol_is_the_guideline_envelope() -> None:
    p = load_protocol("consensus-2018")
    bounds = {(lim.quantity, lim.kind): (lim.lower, lim.upper) for lim in p.limits}
    assert bounds[("bolus_mg_per_kg", LimitKind.HARD)] == (None, Fraction("0.35"))
    assert bounds[("rate_mg_per_kg_per_h", LimitKind.HARD)] == (None, 2)
    assert bounds[("session_total_mg", LimitKind.SOFT)] == (80, None)
    assert bounds[("session_duration_h", LimitKind.SOFT)] == (2, None)
    assert p.dosing.start_rate.value == Fraction(1, 2)


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        ('start_rate = { value = 60, unit = "mg/h"', 'start_rate = { value = 60, unit = "mg/kg/h"',
         "dosing.start_rate.unit", "must be mg/h"),
        ('max_rate = { value = 100, unit = "mg/h", source = "clinic policy (set by the engineering'
         ' team as a configurable default for the medical director to confirm), informed by S53'
         ' (about 50-100 mg/h in practice) and S2 (up to 2 mg/kg/h)" }',
         'max_rate = { value = 100, unit = "mg/h" }', "dosing.max_rate.source", "is required"),
        ('source = "S12 (NIBP every 15 min)"', 'source = "S999"',
         "monitoring.vitals_interval_min.source", "unknown reference key"),
        ('source = "S12 (NIBP every 15 min)"', 'source = "clinic policy"',
         "monitoring.vitals_interval_min.source", "who set it"),
        ('source = "S12 (NIBP every 15 min)"', 'source = "the nurses said so"',
         "monitoring.vitals_interval_min.source", "reference key"),
        ("[dosing]\n", "[dosing]\nspeed = 3\n", "dosing.speed", "unknown key"),
        ('quantity = "rate_mg_per_kg_per_h"\nkind = "soft"\nupper = 1',
         'quantity = "rate_mg_per_kg_per_h"\nkind = "soft"\nupper = 3',
         "limits[1]", "soft upper on rate_mg_per_kg_per_h is above the hard upper"),
        ('quantity = "bolus_mg_per_kg"', 'quantity = "bolus_mg_per_fortnight"',
         "limits[12].quantity", "must be one of"),
        ('conditions = ["active_psychosis"]', 'conditions = ["active_psychosys"]',
         "screening.rule[6].conditions[0]", "unknown condition id"),
        ('id = "psychosis_history"', 'id = "psychosis_active"',
         "screening.rule[7].id", "used twice"),
        ('vital = "heart_rate_per_min"', 'vital = "heart_rate"',
         "monitoring.alarm[1].vital", "must be one of"),
        ('discharge_threshold = { value = 9', 'discharge_threshold = { value = 11',
         "recovery.discharge_threshold", "maximum"),
        ("scale = \"cadss6\"\nlow = 1", "scale = \"cadss6\"\nlow = 40",
         "titration_target.low", "within 0..24"),
        ('start_rate = { value = 60,', 'start_rate = { value = 150,',
         "dosing.start_rate", "above max_rate"),
        ('max_rate = { value = 100,', 'max_rate = { value = 160,',
         "dosing.max_rate", "outside the protocol's own hard limit"),
        ('severity = "review"\nmessage = "Active psychosis',
         'severity = "maybe"\nmessage = "Active psychosis',
         "screening.rule[6].severity", "must be one of"),
        ('sessions = { value = 5,', 'sessions = { value = 4.5,',
         "series.sessions.value", "whole number"),
        (f"version = {CURRENT}\n", 'version = "one"\n', "version", "whole number"),
    ],
)
def test_a_bad_protocol_is_refused_naming_the_file_the_key_and_the_problem(
    old: str, new: str, field: str, problem: str
) -> None:
    with pytest.raises(UsageError) as err:
        load_protocol_text(edited(old, new), "my-protocol.toml")
    assert err.value.field == f"my-protocol.toml:{field}"
    assert problem in err.value.problem


def test_text_that_is_not_toml_is_refused_naming_the_file() -> None:
    with pytest.raises(UsageError) as err:
        load_protocol_text("name = [unclosed", "db:clinic-standard/v7")
    assert err.value.field == "db:clinic-standard/v7"
    assert "not valid TOML" in err.value.problem


def test_source_strings_follow_the_documented_grammar() -> None:
    assert source_problem("S9") is None
    assert source_problem("S26-label, S26-SmPC") is None
    assert source_problem("clinic policy (set by the medical director, 2025)") is None
    assert source_problem("clinic policy") is not None
    assert source_problem("") is not None
    assert source_problem("S1000") is not None
    assert source_keys("S2 (0.5-2 mg/kg/h), SpO2 and CADSS-6; S26-label") == ("S2", "S26-label")


def next_version() -> str:
    text = edited(f"version = {CURRENT}\n", f"version = {CURRENT + 1}\n")
    return text.replace('start_rate = { value = 60, unit = "mg/h", source = "clinic-page"',
                        'start_rate = { value = 50, unit = "mg/h", source = "clinic policy '
                        '(set by the medical director, test)"', 1)


def test_two_versions_of_one_protocol_coexist_and_differ_where_edited() -> None:
    v1 = load_protocol_text(clinic_text(), f"db:clinic-standard/v{CURRENT}")
    v2 = load_protocol_text(next_version(), f"db:clinic-standard/v{CURRENT + 1}")
    assert (v1.name, v1.version) == ("clinic-standard", CURRENT)
    assert (v2.name, v2.version) == ("clinic-standard", CURRENT + 1)
    assert v1.sha256 != v2.sha256
    assert v1.dosing.start_rate.value == 60
    assert v2.dosing.start_rate.value == 50
    changes = {d.path: d for d in protocol_diff(v1, v2)}
    assert set(changes) == {"version", "dosing.start_rate"}
    assert changes["dosing.start_rate"].old is not None
    assert changes["dosing.start_rate"].old.value == 60
    assert changes["dosing.start_rate"].new is not None
    assert changes["dosing.start_rate"].new.value == 50


def test_a_screening_keeps_the_protocol_version_it_used() -> None:
    v1 = load_protocol_text(clinic_text(), f"db:clinic-standard/v{CURRENT}")
    v2 = load_protocol_text(next_version(), f"db:clinic-standard/v{CURRENT + 1}")
    facts = facts_from_dict({"age_years": 40})
    first, second = screen(facts, v1), screen(facts, v2)
    assert first.to_dict()["protocol"] == {"name": "clinic-standard", "version": CURRENT,
                                           "sha256": v1.sha256}
    assert second.to_dict()["protocol"]["version"] == CURRENT + 1
    # Reading the old text again gives the same version, byte for byte.
    assert load_protocol_text(v1.text, "again").sha256 == first.protocol_sha256


def test_a_diff_with_unchanged_rows_lists_every_path_once() -> None:
    p = load_protocol("clinic-standard")
    rows = protocol_diff(p, p, include_unchanged=True)
    assert {d.change for d in rows} == {"same"}
    assert [d.path for d in rows] == [r.path for r in protocol_rows(p)]
    assert len({r.path for r in protocol_rows(p)}) == len(protocol_rows(p))


def test_rows_carry_value_unit_and_source() -> None:
    rows = {r.path: r for r in protocol_rows(load_protocol("clinic-standard"))}
    start = rows["dosing.start_rate"]
    assert (start.value, start.unit, start.source) == (60, "mg/h", "clinic-page")
    assert rows["limits[rate_mg_per_kg_per_h/hard].upper"].source.startswith("S2")
    assert rows["premedication[glycopyrrolate].dose"].value == 0.2


def test_load_protocol_names_the_unknown_protocol_or_version() -> None:
    with pytest.raises(UsageError, match="no shipped protocol named 'nope'"):
        load_protocol("nope")
    with pytest.raises(UsageError, match="no shipped version 9"):
        load_protocol("clinic-standard", 9)
    assert load_protocol("clinic-standard", 1).status is ProtocolStatus.ACTIVE


def test_the_published_json_schema_of_the_format_is_current() -> None:
    import json
    from pathlib import Path

    from ketamine_clinic.clinical.protocol.format import format_json_schema

    published = Path(__file__).resolve().parents[2] / "docs" / "protocol-format.schema.json"
    assert json.loads(published.read_text("utf-8")) == format_json_schema(), (
        "regenerate: ketamine-clinic protocols schema > docs/protocol-format.schema.json")


def test_the_json_schema_refuses_an_unknown_key_as_the_loader_does() -> None:
    from ketamine_clinic.clinical.protocol.format import format_json_schema

    schema = format_json_schema()
    dosing = schema["$defs"]["DosingSection"]
    assert dosing["additionalProperties"] is False
    assert "start_rate" in dosing["required"]
    with pytest.raises(UsageError) as err:
        load_protocol_text(edited("[dosing]\n", "[dosing]\nspeed = 3\n"), "my-protocol.toml")
    assert err.value.field == "my-protocol.toml:dosing.speed"
