"""Why a file-based login is not imported: one exception with a stable reason code, and the CLI's exit codes.
A refusal comes before anything is written to whatsmeow's tables, or inside the import's transaction, which rolls back.
"""

from __future__ import annotations

from app.errors import AppError

# Exit codes of `python -m app migrate-auth` (listed in its --help).
EXIT_IMPORTED = 0  # imported, or with --dry-run: would import
EXIT_FAILED = 1  # bad configuration, Postgres unreachable, another import under way, or rolled back on an error
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_ALREADY_PAIRED = 3  # Postgres already holds a device: nothing imported, the file left alone
EXIT_UNUSABLE_FILE = 4  # missing, unknown, corrupt, truncated, locked, never paired, bad keys, whatsapp-web.js
EXIT_VERSION = 5  # the file's whatsmeow schema differs from the Postgres store's
EXIT_CHOOSE = 6  # several devices (or files): choose one

EXIT_CODES_HELP = f"""exit status:
  {EXIT_IMPORTED}  imported (with --dry-run: the file can be imported, nothing was written)
  {EXIT_FAILED}  failure: bad configuration, Postgres unreachable, another import under way, or the import
     failed and was rolled back (Postgres unchanged)
  {EXIT_USAGE}  bad command line
  {EXIT_ALREADY_PAIRED}  nothing to do: Postgres already holds a WhatsApp device; the file was left alone
  {EXIT_UNUSABLE_FILE}  the login cannot be imported: missing, of an unknown kind, corrupt, truncated, locked, never
     paired, without its account, with keys or signatures that do not check out, or a whatsapp-web.js session
     (those need one pairing)
  {EXIT_VERSION}  the file's whatsmeow schema version differs from the Postgres store's
  {EXIT_CHOOSE}  the file holds several devices (or --jid names none of them): choose one with --jid

A refused or failed import writes nothing to whatsmeow's tables, and the file itself is only ever read."""

# reason -> exit code. The reasons are stored with each attempt (auth_imports.reason) and shown in /api/status.
REASONS: dict[str, int] = {
    "not_found": EXIT_UNUSABLE_FILE,
    "unsupported_format": EXIT_UNUSABLE_FILE,  # whatsapp-web.js: its keys cannot be taken from the files
    "not_a_store": EXIT_UNUSABLE_FILE,  # neither a whatsmeow store nor a Baileys login
    "corrupt": EXIT_UNUSABLE_FILE,  # malformed or truncated
    "locked": EXIT_UNUSABLE_FILE,  # another process is writing it, or left an unfinished write
    "no_device": EXIT_UNUSABLE_FILE,  # a store that was never paired (or was logged out); Baileys creds without me.id
    "no_account": EXIT_UNUSABLE_FILE,  # Baileys creds without the signed device identity (account)
    "key_mismatch": EXIT_UNUSABLE_FILE,  # a public key that is not the X25519 key of its private key
    "bad_signature": EXIT_UNUSABLE_FILE,  # the signed pre-key's or the ADV account/device signature does not verify
    "bad_data": EXIT_UNUSABLE_FILE,  # a value that does not fit its column
    "version_mismatch": EXIT_VERSION,
    "schema_mismatch": EXIT_VERSION,  # same version number, different tables or columns
    "several_devices": EXIT_CHOOSE,  # several devices in a store, several Baileys logins in one table
    "unknown_device": EXIT_CHOOSE,  # --jid names no device of the file
    "several_files": EXIT_CHOOSE,  # auto-detection found more than one store with a device
}

PAIR_ONCE = "pair once on the page (QR code or pairing code); from then on the login lives in Postgres"


class Refusal(AppError):
    """The file is not imported, for `reason` (a key of REASONS); the message says what to do about it."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason
        self.message = message

    @property
    def exit_code(self) -> int:
        return REASONS[self.reason]
