"""What one import attempt found and did: the source and its format, both schema versions, the device, rows per table,
what could not be carried over, the outcome."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.authimport.refusal import (
    EXIT_ALREADY_PAIRED,
    EXIT_FAILED,
    EXIT_IMPORTED,
    REASONS,
    Refusal,
)
from app.authimport.source import Device, Source, SourceStore

IMPORTED = "imported"
WOULD_IMPORT = "would_import"  # a dry run that found nothing in the way
ALREADY_PAIRED = "already_paired"  # Postgres holds a device: the file is left alone (not recorded)
REFUSED = "refused"
FAILED = "failed"


@dataclasses.dataclass
class Report:
    source: str
    trigger: str  # "start" or "cli"
    dry_run: bool = False
    outcome: str = FAILED
    reason: str | None = None
    message: str = ""
    sha256: str | None = None
    source_version: tuple[int, int] | None = None  # (version, compat)
    store_version: tuple[int, int] | None = None
    store_created: bool = False  # whatsmeow created its tables in Postgres for this import
    device: Device | None = None
    devices_in_postgres: list[str] = dataclasses.field(default_factory=list)
    planned: dict[str, int] = dataclasses.field(default_factory=dict)  # table -> rows to copy, in copy order
    copied: dict[str, int] = dataclasses.field(default_factory=dict)
    kept: dict[str, int] = dataclasses.field(default_factory=dict)  # rows that were already in Postgres
    duration: float = 0.0
    kind: str = ""  # the source's format: "whatsmeow SQLite store", "Baileys folder", ...
    notes: list[str] = dataclasses.field(default_factory=list)  # parts not carried over, and what that costs

    def read(self, source: Source) -> None:
        self.source = str(source.path)
        self.sha256 = source.sha256
        self.source_version = (source.version, source.compat)
        self.kind = source.kind
        self.notes = list(source.notes)

    @property
    def converted(self) -> bool:
        """The rows were converted from another library's login (not copied from a whatsmeow store)."""
        return bool(self.kind) and self.kind != SourceStore.kind

    def refuse(self, refusal: Refusal) -> None:
        self.outcome, self.reason, self.message = REFUSED, refusal.reason, refusal.message
        self.copied, self.kept = {}, {}  # a refusal during the copy rolled it back

    def fail(self, reason: str, message: str) -> None:
        self.outcome, self.reason, self.message = FAILED, reason, message
        self.copied, self.kept = {}, {}  # rolled back: nothing of it is in Postgres

    @property
    def total_rows(self) -> int:
        return sum(self.copied.values()) if self.outcome == IMPORTED else sum(self.planned.values())

    @property
    def exit_code(self) -> int:
        if self.outcome in (IMPORTED, WOULD_IMPORT):
            return EXIT_IMPORTED
        if self.outcome == ALREADY_PAIRED:
            return EXIT_ALREADY_PAIRED
        return REASONS.get(self.reason or "", EXIT_FAILED)

    def summary(self) -> dict[str, Any]:
        """For logs and /api/status: JSON-ready, without the per-table breakdown."""
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "message": self.message,
            "source": self.source,
            "format": self.kind or None,
            "sha256": self.sha256,
            "device": self.device.jid if self.device else None,
            "rows": self.total_rows,
            "duration_ms": round(self.duration * 1000),
            "notes": self.notes,
        }
