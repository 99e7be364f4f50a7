"""Logging to stdout, one line per event, with every configured secret masked before it is written."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "[redacted]"


class OneLineFormatter(logging.Formatter):
    """Folds tracebacks and multi-line messages onto one line so log routers (Heroku's Logplex) keep them whole."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(FORMAT)
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record).replace("\r", "").replace("\n", " | ")
        for secret in self.secrets:
            line = line.replace(secret, MASK)
        return line


def configure_logging(level: str, secrets: Iterable[str] = (), stream: TextIO | None = None) -> None:
    """Replace whatever handlers the root logger has with one handler at `level` (stdout unless told otherwise)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(OneLineFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # hypercorn logs through "hypercorn.error" (app/hypercorn_config.py), which propagates here.
    logging.getLogger("hypercorn.error").handlers.clear()
