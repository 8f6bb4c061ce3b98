"""Exit codes: one per kind of failure, so scripts can tell them apart."""

from __future__ import annotations

from enum import IntEnum

from ..errors import BackendUnavailable, DeviceUnavailable, InputError, OutputError, SettingsError


class ExitStatus(IntEnum):
    SUCCESS = 0
    ERROR = 1  # a bug or an unexpected failure; rerun with --traceback
    BAD_INPUT = 2  # bad usage, bad option value, unreadable or unusable input
    WRITE_FAILED = 3  # the output could not be written (disk full, permissions)
    BACKEND_UNAVAILABLE = 4  # the backend asked for cannot run here
    SOME_FAILED = 5  # batch: the others are done, but some clips failed (see report.json)
    DEVICE_UNAVAILABLE = 6  # webcam: no such camera, no display for the window, no virtual camera device
    HANGUP = 129  # SIGHUP: the terminal went away
    BROKEN_PIPE = 141  # stdout was closed early (`vidtoon info ... | head -1`): stopped quietly, as 128 + SIGPIPE
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM


EXIT_FOR = {
    InputError: ExitStatus.BAD_INPUT,
    SettingsError: ExitStatus.BAD_INPUT,
    OutputError: ExitStatus.WRITE_FAILED,
    BackendUnavailable: ExitStatus.BACKEND_UNAVAILABLE,
    DeviceUnavailable: ExitStatus.DEVICE_UNAVAILABLE,
}


def exit_status(error: BaseException) -> ExitStatus:
    """The exit code for an error vidtoon raised on purpose (ERROR for anything else)."""
    return next((code for kind, code in EXIT_FOR.items() if isinstance(error, kind)), ExitStatus.ERROR)
