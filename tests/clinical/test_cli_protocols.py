"""``ketamine-clinic protocols`` and ``ketamine-clinic screen``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ketamine_clinic.cli import main
from ketamine_clinic.clinical.protocol import condition_vocabulary, load_protocol


def write_facts(tmp_path: Path, **changes: Any) -> str:
    facts: dict[str, Any] = {
        "age_years": 40, "sex_at_birth": "female", "pregnant": False, "weight_kg": 70,
        "diagnoses": ["G90.511"], "conditions": [],
        "conditions_absent": sorted(condition_vocabulary()), "medications": ["gabapentin"],
        "allergies": [],
        "budapest": {"disproportionate_pain": True,
                     "symptoms": ["allodynia", "skin_colour_change", "oedema"],
                     "signs": ["allodynia", "oedema"], "no_better_diagnosis": True},
    }
    facts.update(changes)
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts))
    return str(path)


def test_protocols_list_shows_every_shipped_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("clinic-standard", "schwartzman-2009", "consensus-2018"):
        assert name in out


def test_protocols_show_gives_every_value_with_its_source_and_the_citations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["protocols", "show", "schwartzman-2009"]) == 0
    out = capsys.readouterr().out
    assert "dosing.start_rate = 0.35 mg/kg/h\n    source: S9" in out
    assert "[S9] Schwartzman RJ" in out


def test_protocols_show_json_has_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols", "show", "clinic-standard", "--version", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sha256"] == load_protocol("clinic-standard", 1).sha256
    rows = {r["path"]: r for r in data["rows"]}
    assert rows["dosing.start_rate"]["value"] == 60
    assert rows["dosing.start_rate"]["unit"] == "mg/h"


def test_an_unknown_version_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols", "show", "clinic-standard", "--version", "7"]) == 2
    assert "no shipped version 7" in capsys.readouterr().err


def test_protocols_diff_lists_the_differences(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols", "diff", "consensus-2018@1", "schwartzman-2009", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    paths = {r["path"]: r for r in data["rows"]}
    assert paths["dosing.start_rate"]["old"]["value"] == 0.5
    assert paths["dosing.start_rate"]["new"]["value"] == 0.35
    assert main(["protocols", "diff", "consensus-2018@x", "consensus-2018"]) == 2


def test_screen_json_for_an_eligible_patient_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["screen", "--protocol", "consensus-2018", write_facts(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["decision"] == "eligible"
    assert data["reasons"] == []
    assert data["protocol"]["name"] == "consensus-2018"
    assert data["protocol"]["version"] == 2


def test_screen_for_an_excluded_patient_exits_1_with_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["screen", "--protocol", "clinic-standard",
                 write_facts(tmp_path, age_years=70), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["decision"] == "ineligible"
    first = data["reasons"][0]
    assert first["rule"] == "age_elderly"
    assert first["severity"] == "exclude"
    assert first["source"].startswith("clinic policy")


def test_screen_text_names_what_to_find_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["screen", "--protocol", "consensus-2018",
                 write_facts(tmp_path, medications=["clarithromicin"])])
    out = capsys.readouterr().out
    assert code == 1
    assert "Decision: needs-physician-review" in out
    assert "Find out: the generic name or spelling of 'clarithromicin'" in out


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"conditions": ["sore_feet"]}, "unknown condition id 'sore_feet'"),
        ({"diagnoses": ["X99.9"]}, "not a known icd10cm diagnosis code"),
    ],
)
def test_screen_refuses_bad_facts_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any], message: str
) -> None:
    assert main(["screen", "--protocol", "clinic-standard", write_facts(tmp_path, **changes)]) == 2
    assert message in capsys.readouterr().err


def test_screen_refuses_a_file_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "facts.json"
    path.write_text("{age: 40")
    assert main(["screen", "--protocol", "clinic-standard", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["screen", "--protocol", "clinic-standard", str(tmp_path / "none.json")]) == 2
    assert main(["screen", str(path)]) == 2


def test_screen_vocabulary_lists_every_condition_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", "--vocabulary", "--json"]) == 0
    ids = [c["id"] for c in json.loads(capsys.readouterr().out)]
    assert ids == list(condition_vocabulary())
    assert {"uncontrolled_hypertension", "active_psychosis", "cystitis_history"} <= set(ids)


def absent_except(*present: str) -> dict[str, Any]:
    return {"conditions": list(present),
            "conditions_absent": [c for c in sorted(condition_vocabulary())
                                  if c not in present]}


# Issue 12 and issue 11 finding 4, through the command: (protocol, facts, decision, rule).
REVIEW_ITEMS = [
    ("clinic-standard", absent_except("alcohol_misuse"), "needs-physician-review",
     "substance_use"),
    ("consensus-2018", {"age_years": 17}, "needs-physician-review", "age_minimum"),
    ("consensus-2018", {"medications": ["memantine"]}, "needs-physician-review",
     "interactions.other_nmda_antagonist"),
    ("consensus-2018", {"medications": ["Plavix"]}, "needs-physician-review",
     "interactions.cyp2b6_inhibitor"),
    ("consensus-2018", {"medications": ["diltiazem"]}, "eligible-with-conditions",
     "interactions.moderate_cyp3a4_inhibitor"),
    ("consensus-2018", absent_except("breastfeeding"), "needs-physician-review",
     "breastfeeding"),
    ("consensus-2018", absent_except("seizure_disorder"), "needs-physician-review",
     "seizure_disorder"),
    ("consensus-2018", absent_except("thyrotoxicosis"), "needs-physician-review",
     "thyrotoxicosis"),
    ("consensus-2018", absent_except("aneurysm"), "needs-physician-review", "aneurysm"),
    ("consensus-2018", absent_except("phaeochromocytoma"), "needs-physician-review",
     "phaeochromocytoma"),
    ("consensus-2018", absent_except("difficult_airway"), "needs-physician-review", "airway"),
    ("consensus-2018", absent_except("severe_emergence_reaction"), "needs-physician-review",
     "severe_emergence_reaction"),
    ("consensus-2018", absent_except("ketamine_hypersensitivity"), "ineligible",
     "ketamine_hypersensitivity"),
    ("consensus-2018", {"allergies": [{"substance": "Ketalar", "reaction": "anaphylaxis"}]},
     "ineligible", "allergy_ketamine.ketalar"),
    ("clinic-standard", absent_except("myasthenia_gravis"), "needs-physician-review",
     "protocol_drugs.glycopyrrolate"),
    ("schwartzman-2009", {"age_years": 66}, "needs-physician-review", "age_maximum"),
    ("schwartzman-2009", absent_except("prior_ketamine_treatment"), "needs-physician-review",
     "ketamine_naive"),
]


@pytest.mark.parametrize(("protocol", "changes", "decision", "rule"), REVIEW_ITEMS,
                         ids=[f"{p}-{r}" for p, _c, _d, r in REVIEW_ITEMS])
def test_each_review_finding_through_the_screen_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], protocol: str,
        changes: dict[str, Any], decision: str, rule: str) -> None:
    assert main(["screen", "--protocol", protocol, write_facts(tmp_path, **changes),
                 "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] == decision
    reason = {r["rule"]: r for r in data["reasons"]}[rule]
    assert reason["message"]
    assert reason["source"]


def test_the_version_2_diff_shows_each_review_change_with_its_source(
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, paths in (
        ("clinic-standard", ["screening.rule[ketamine_hypersensitivity].severity",
                             "screening.rule[allergy_ketamine].drugs",
                             "screening.rule[protocol_drugs].kind",
                             "screening.rule[substance_use].conditions",
                             "screening.rule[airway].conditions"]),
        ("consensus-2018", ["screening.rule[age_minimum].threshold_years",
                            "rescue[midazolam].dose"]),
        ("schwartzman-2009", ["screening.rule[age_maximum].threshold_years",
                              "screening.rule[ketamine_naive].conditions",
                              "dosing.rate_cap_mg_per_h"]),
    ):
        assert main(["protocols", "diff", f"{name}@1", name, "--json"]) == 0
        rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
        for path in paths:
            assert path in rows, (name, path)
            assert rows[path]["new"]["source"], (name, path)
