"""Schemathesis against the running app (hypercorn, the simulator backend, the bearer token): thousands of generated
requests, valid and invalid, from /api/openapi.json; no answer may be a 5xx or differ from what the document says
(status code, content type, body schema, headers).

Left out, on purpose: /api/simulator/crash and /api/simulator/hang, which take the worker down (it comes back, but
until it does the session's routes rightly answer 503), and /api/simulator/grow, whose valid bodies make the worker
hold up to 2 GB each, as many times as the generator likes, until the memory watchdog's next heartbeat.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.processes import TOKEN, AppProcess

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
EXCLUDED = r"^/api/simulator/(crash|hang|grow)$"
EXAMPLES = 70  # per operation and phase: about 2,400 requests in all
MIN_CASES = 2000
TIME_LIMIT = 420.0  # seconds; a run takes about one minute here


def test_the_running_app_answers_as_its_openapi_document_says(database_url: str, tmp_path: Path) -> None:
    app = AppProcess(database_url, tmp_path / "app.log", env={"SIMULATOR_QR_SECONDS": "600"}).start()
    report = tmp_path / "schemathesis.json"
    try:
        app.wait_state("pairing")
        with app.api() as api:  # linked, so that the simulator's routes reach a live session first
            assert api.post("/api/simulator/pair", json={"phone": "+6281234567890"}).status_code == 202
        app.wait_state("connected")
        run = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "run", f"{app.url}/api/openapi.json"),
                *("--header", f"Authorization: Bearer {TOKEN}"),
                *("--checks", ",".join(CHECKS)),
                *("--exclude-path-regex", EXCLUDED),
                *("--max-examples", str(EXAMPLES), "--seed", "20261207", "--workers", "1"),
                *("--request-timeout", "35"),  # above the supervisor's own 30 s bound on a worker command
                *("--report", "json", "--report-json-path", str(report)),
            ],
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
            cwd=tmp_path,  # schemathesis writes its cassettes and caches here, not into the repo
            check=False,
        )
        assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    finally:
        assert app.terminate() == 0
    outcome = json.loads(report.read_text())
    assert outcome["complete"] and outcome["failures"] == [] and outcome["errors"] == []
    assert outcome["test_cases"]["generated"] >= MIN_CASES, outcome["test_cases"]
    assert "Traceback" not in app.output() and "unhandled error" not in app.output()
