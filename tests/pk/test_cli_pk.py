"""`ketamine-clinic pk`: models, simulate, population; output formats and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ketamine_clinic.cli import main

SIM = ["pk", "simulate", "--model", "domino", "--weight-kg", "70", "--segment", "0:30:60",
       "--segment", "30:240:90"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models_lists_every_model_with_reference_sampling_compound_and_validity(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pk", "models", "--json")
    assert code == 0
    models = {m["id"]: m for m in json.loads(out)["models"]}
    assert "simons2022" in models
    assert "dahan2011-crps" in models
    assert models["simons2022"]["sampling"] == "arterial"
    assert models["fanta2015-otto2021"]["compound"] == "S-ketamine"
    assert models["domino"]["validity"]["weight_kg"] == "40-150"
    assert "Anesthesiology 2020" in models["kamp2020"]["reference"]
    code, text, _ = run(capsys, "pk", "models")
    assert code == 0
    assert "herd2007" in text
    assert "reference:" in text


def test_simulate_json_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SIM, "--at", "0,60,240,480", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["model"] == "domino"
    assert d["times_min"] == [0, 60, 240, 480]
    assert len(d["plasma_ng_per_ml"]) == 4
    assert len(d["effect_site_ng_per_ml"]) == 4
    assert d["norketamine_ng_per_ml"] is None
    assert d["warnings"] == []
    assert d["plasma_ng_per_ml"][0] == 0
    assert 400 < d["plasma_ng_per_ml"][1] < 500


def test_simulate_json_of_a_metabolite_model_has_norketamine_and_warnings(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pk", "simulate", "--model", "simons2022", "--weight-kg", "70",
                       "--segment", "0:240:60", "--at", "0:480:60", "--json")
    assert code == 0
    d = json.loads(out)
    assert len(d["norketamine_ng_per_ml"]) == 9
    assert d["effect_site_ng_per_ml"] is None
    assert any("S-ketamine part" in w for w in d["warnings"])


def test_simulate_csv_has_a_header_and_one_row_per_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SIM, "--at", "0:120:30", "--csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["time_min", "plasma_ng_per_ml", "effect_site_ng_per_ml"]
    assert [r[0] for r in rows[1:]] == ["0", "30", "60", "90", "120"]


def test_simulate_table_reports_the_threshold_crossing(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SIM, "--threshold-ng-per-ml", "100")
    assert code == 0
    assert "plasma below 100 ng/mL from" in out


def test_simulate_plot_writes_a_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "sim.png"
    code, out, _ = run(capsys, "pk", "simulate", "--model", "fanta2015-otto2021",
                       "--weight-kg", "70", "--segment", "0:240:60",
                       "--threshold-ng-per-ml", "50", "--plot", str(png))
    assert code == 0
    assert str(png) in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_population_json_has_bands_for_each_percentile(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pk", "population", "--model", "fanta2015-otto2021",
                       "--weight-kg", "70", "--segment", "0:240:60", "--n", "300", "--seed",
                       "4", "--percentiles", "10,50,90", "--at", "0:600:60", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["n"] == 300
    assert d["seed"] == 4
    assert d["percentiles"] == [10, 50, 90]
    band = d["bands_ng_per_ml"]["plasma"]
    assert len(band) == 3
    assert len(band[0]) == 11
    assert band[0][4] < band[1][4] < band[2][4]
    assert d["iiv"]["label"] == "published (Otto2021)"


def test_population_plot_and_user_omegas(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    png = tmp_path / "pop.png"
    code, _, err = run(capsys, "pk", "population", "--model", "kamp2020", "--weight-kg", "70",
                       "--segment", "0:240:60", "--n", "200", "--seed", "1", "--omega2",
                       "CL=0.09,V1=0.1", "--plot", str(png))
    assert code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "user-given" in err


@pytest.mark.parametrize(("args", "option"), [
    (["--model", "propofol"], "--model"),
    (["--segment", "0:10:x"], "--segment"),
    (["--segment=-5:10:60"], "--segment"),
    (["--segment", "0:30:60", "--segment", "20:40:60"], "--segment"),
    (["--segment", "0:30"], "--segment"),
    (["--at=-1,10"], "--at"),
    (["--weight-kg", "400"], "--weight-kg"),
    (["--weight-kg", "200"], "--weight-kg"),
    (["--weight-kg", "heavy"], "--weight-kg"),
    (["--bolus", "5"], "--bolus"),
    (["--ke0", "-1"], "--ke0"),
    (["--drug", "esketamine"], "--drug"),
])
def test_bad_input_exits_2_naming_the_option(capsys: pytest.CaptureFixture[str],
                                             args: list[str], option: str) -> None:
    base = {"--model": "domino", "--weight-kg": "70"}
    argv = ["pk", "simulate"]
    for key, value in base.items():
        if key not in args:
            argv += [key, value]
    if not any(a.startswith("--segment") for a in args):
        argv += ["--segment", "0:60:60"]
    code = main([*argv, *args])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {option}" in err


def test_an_unknown_drug_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*SIM, "--drug", "ketamine-s"])
    assert exc.value.code == 2
    capsys.readouterr()


def test_population_without_published_variability_asks_for_omega2(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["pk", "population", "--model", "domino", "--weight-kg", "70", "--segment",
                 "0:60:60", "--n", "10", "--seed", "1"])
    assert code == 2
    assert "--omega2" in capsys.readouterr().err
