"""Each pytest run has a base temp folder of its own (tests/conftest.py), so runs side by side cannot remove each
other's files (the embedded Postgres lives there)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


def test_the_run_has_a_base_temp_folder_of_its_own(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    basetemp = tmp_path_factory.getbasetemp()
    assert tmp_path.is_relative_to(basetemp)
    if request.config.invocation_params.args and any(
        arg.startswith("--basetemp") for arg in request.config.invocation_params.args
    ):
        pytest.skip("--basetemp was given: the folder is the caller's choice")
    # Not pytest's shared /tmp/pytest-of-<user>, which every run of the user prunes.
    assert basetemp.parent == Path(tempfile.gettempdir()).resolve()
    assert basetemp.name.startswith("pytest-run-")
