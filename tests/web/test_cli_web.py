"""The web administration commands: createuser, site, token, demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ketamine_clinic.cli import build_parser, main
from ketamine_clinic.web.accounts.models import ApiToken, Site, User


def test_createuser_takes_the_password_from_the_environment(cast: Any, monkeypatch: Any,
                                                              capsys: Any) -> None:
    monkeypatch.setenv("KETAMINE_CLINIC_PASSWORD", "a sufficiently long passphrase")
    code = main(["createuser", "--username", "frank", "--role", "nurse", "--site", "denver",
                 "--site", "boulder"])
    assert code == 0
    frank = User.objects.get(username="frank")
    assert frank.check_password("a sufficiently long passphrase")
    assert sorted(s.code for s in frank.sites.all()) == ["boulder", "denver"]


@pytest.mark.parametrize(("args", "field"), [
    (["--role", "wizard", "--site", "denver"], "--role"),
    (["--role", "nurse", "--site", "atlantis"], "--site"),
])
def test_createuser_refuses_bad_input_with_exit_code_2(cast: Any, monkeypatch: Any,
                                                       capsys: Any, args: list[str],
                                                       field: str) -> None:
    monkeypatch.setenv("KETAMINE_CLINIC_PASSWORD", "a sufficiently long passphrase")
    assert main(["createuser", "--username", "gil", *args]) == 2
    assert field in capsys.readouterr().err
    assert not User.objects.filter(username="gil").exists()


def test_createuser_refuses_a_weak_password(cast: Any, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("KETAMINE_CLINIC_PASSWORD", "123")
    assert main(["createuser", "--username", "gil", "--role", "nurse", "--site",
                 "denver"]) == 2
    assert "password" in capsys.readouterr().err


def test_token_create_prints_a_token_that_authenticates(cast: Any, capsys: Any,
                                                        client: Any) -> None:
    assert main(["token", "create", "--username", "bob"]) == 0
    raw = capsys.readouterr().out.strip()
    assert ApiToken.objects.filter(token_sha256=ApiToken.digest(raw)).exists()
    assert client.get("/api/v1/patients", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_site_create_adds_a_site(db: Any, capsys: Any) -> None:
    assert main(["site", "create", "--code", "aurora", "--name", "Aurora"]) == 0
    assert Site.objects.filter(code="aurora").exists()


def test_every_subcommand_has_help(capsys: Any) -> None:
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    names = list(actions[0].choices)  # type: ignore[attr-defined]
    assert {"demo", "serve", "createuser", "token", "audit"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_demo_prepares_a_fresh_data_folder_without_serving(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "ketamine_clinic.cli", "demo", "--data-dir", str(tmp_path),
         "--no-serve"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "dr.alvarez" in out.stdout
    assert (tmp_path / "ketamine-clinic.sqlite3").exists()
    verify = subprocess.run(
        [sys.executable, "-m", "ketamine_clinic.cli", "audit", "verify", "--data-dir",
         str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0
    assert "intact" in verify.stdout
