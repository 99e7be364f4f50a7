"""The files a platform reads at deploy time agree with the app: app.json, runtime.txt, .python-version, Procfile."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.settings import REQUIRED_WHEN_DEPLOYED

ROOT = Path(__file__).resolve().parent.parent


def test_app_json_names_only_what_the_app_reads_and_generates_every_required_secret() -> None:
    manifest = json.loads((ROOT / "app.json").read_text())
    settings_source = (ROOT / "app" / "settings.py").read_text()
    for name in manifest["env"]:
        assert f'"{name}"' in settings_source, f"app.json declares {name}, which the app never reads"
    for name in set(REQUIRED_WHEN_DEPLOYED) - {"DATABASE_URL"}:
        assert manifest["env"][name].get("generator") == "secret", name
    assert "repository" not in manifest or "your-org" not in manifest["repository"]
    assert manifest["formation"]["web"]["quantity"] == 1


def test_the_python_version_files_agree() -> None:
    runtime = (ROOT / "runtime.txt").read_text().strip()
    assert runtime == "python-" + (ROOT / ".python-version").read_text().strip()


def test_procfile_serves_one_process_and_migrates_on_release() -> None:
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert "--workers 0" in procfile["web"] and "$PORT" in procfile["web"]
    assert procfile["release"] == "python -m app migrate"


def test_the_deploy_button_says_what_to_put_in_its_link() -> None:
    readme = (ROOT / "README.md").read_text()
    [template] = re.findall(r"heroku\.com/deploy\?template=(\S+?)\)", readme)
    assert template == "https://github.com/OWNER/REPOSITORY" and "Replace `OWNER/REPOSITORY`" in readme
