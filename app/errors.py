"""The application's own exceptions. Driver and library errors are translated into these at the edges."""


class AppError(Exception):
    """Base of every error the application raises on purpose."""


class SettingsError(AppError):
    """One or more environment variables are missing or invalid; `problems` maps each variable to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(sorted(problems.items()))
        lines = [f"  {name}: {problem}" for name, problem in self.problems.items()]
        super().__init__("Invalid configuration:\n" + "\n".join(lines))


class DatabaseUnavailable(AppError):
    """Postgres cannot be reached right now (restart, failover, network). Callers answer 503 and try again later."""


class MigrationError(AppError):
    """The schema cannot be brought up to date (an applied migration changed, or one failed)."""


class WhatsAppError(AppError):
    """WhatsApp, through the session's worker, did not carry out a command; `permanent` says whether retrying can ever
    help. The worker channel (app/whatsapp/process.py) raises it from the worker's reply: no caller sees its frames."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NoReply(WhatsAppError):
    """The worker exited or stopped answering before it replied: the command may have been carried out, or not."""


class MediaStoreUnavailable(AppError):
    """The S3-compatible bucket of MEDIA_STORAGE_URL did not answer or refused (an outage, wrong credentials). Callers
    answer 503, or keep the message and try the file again later."""
