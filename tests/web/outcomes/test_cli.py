"""``ketamine-clinic report outcomes`` and ``cohort generate``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from ketamine_clinic.cli import main
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.patients.models import Patient


def test_report_json_gives_the_same_numbers_as_the_page(cast: Any, client: Client,
                                                        hand_cohort: Any,
                                                        capsys: Any) -> None:
    assert main(["report", "outcomes", "--json", "--site", "denver"]) == 0
    printed = json.loads(capsys.readouterr().out)
    client.force_login(cast.dave)
    api = client.get("/api/v1/outcomes/report").json()["report"]
    assert printed["filters"]["sites"] == ["denver"]
    printed["filters"]["sites"] = []
    assert printed == api
    assert AuditEntry.objects.filter(action="outcomes.report", client_address="cli").exists()


def test_report_summary_csv_and_pdf(cast: Any, hand_cohort: Any, capsys: Any,
                                    tmp_path: Path) -> None:
    assert main(["report", "outcomes", "--diagnosis", "crps", "--from", "2025-02-01",
                 "--to", "2025-02-28"]) == 0
    out = capsys.readouterr().out
    assert "3 series of 3 patients" in out
    assert "responders >= 30%: 100% (3/3" in out
    assert main(["report", "outcomes", "--csv", "-"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"section": "cohort", "measure": "series", "value": "5"}.items() <= next(
        r for r in rows if r["measure"] == "series").items()
    pdf = tmp_path / "outcomes.pdf"
    assert main(["report", "outcomes", "--pdf", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(("args", "field"), [
    (["--site", "atlantis"], "--site"),
    (["--diagnosis", "flu"], "--diagnosis"),
    (["--from", "2025-03-01", "--to", "2025-02-01"], "--to"),
])
def test_report_refuses_bad_filters_with_exit_code_2(cast: Any, capsys: Any,
                                                     args: list[str], field: str) -> None:
    assert main(["report", "outcomes", *args]) == 2
    assert field in capsys.readouterr().err


def test_a_bad_date_is_an_argparse_error(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "outcomes", "--from", "2025-13-01"])
    assert exit_.value.code == 2
    assert "--from" in capsys.readouterr().err


def test_cohort_generate_loads_fictional_patients_at_the_sites_asked(cast: Any,
                                                                     capsys: Any) -> None:
    assert main(["cohort", "generate", "--patients", "4", "--seed", "9", "--site",
                 "boulder", "--detail", "outcomes", "--quiet"]) == 0
    assert "Loaded 4 synthetic patients" in capsys.readouterr().out
    synthetic = Patient.objects.filter(mrn__startswith="SYN9-")
    assert synthetic.count() == 4
    assert set(synthetic.values_list("site__code", flat=True)) == {"boulder"}
    assert main(["cohort", "generate", "--patients", "0"]) == 2
