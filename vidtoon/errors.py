"""The errors vidtoon raises. The CLI maps each to an exit code.

Each class also inherits the built-in error it refines (as PyAV does), so
callers who catch ValueError or OSError keep working.
"""


class VidtoonError(Exception):
    """Base of every error vidtoon raises on purpose."""


class InputError(VidtoonError, ValueError):
    """The input file is missing, unreadable or not a usable video."""


class OutputError(VidtoonError, OSError):
    """The output cannot be written where or how it was asked."""


class SettingsError(VidtoonError, ValueError):
    """An option has a value vidtoon cannot use."""


class BackendUnavailable(VidtoonError, RuntimeError):
    """A backend was asked for but cannot run here (no GPU, no weights, ...)."""


class DeviceUnavailable(VidtoonError, RuntimeError):
    """A camera, display or virtual camera was asked for but is not there."""


def describe(error: BaseException) -> str:
    """A short reason for a library error (FFmpeg's or the OS's), for one-line messages."""
    text = getattr(error, "strerror", None) or str(error)
    return text.strip().rstrip(".") or type(error).__name__
