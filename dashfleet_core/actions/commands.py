"""Running a program from an action: a fixed argument list, no shell, a timeout, captured output.

Actions never build command lines: `run_command` takes a list of strings, looks the program up
in the system folders only, and runs it with a clean environment (none of the server's secrets),
no stdin, output cut to a size limit, and a kill after the timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Sequence

MAX_OUTPUT_CHARS = 64 * 1024
SAFE_POSIX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _safe_path() -> str:
    if os.name == "nt":
        root = os.environ.get("SystemRoot", r"C:\Windows")
        return os.pathsep.join([rf"{root}\System32", root, rf"{root}\System32\WindowsPowerShell\v1.0"])
    return SAFE_POSIX_PATH


def _clean_env() -> dict[str, str]:
    """The child's environment: system paths and a C locale, none of our secrets."""
    env = {"PATH": _safe_path(), "LANG": "C", "LC_ALL": "C"}
    for key in ("SystemRoot", "SYSTEMROOT", "WINDIR", "TEMP", "TMP", "HOME", "USER", "LOGNAME"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def find_program(name: str) -> str | None:
    """The absolute path of a system program, looked up in the system folders only."""
    return shutil.which(name, path=_safe_path())


@dataclass
class CommandResult:
    """What a command did; `error` says why it did not run or did not finish."""

    argv: list[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0

    def to_dict(self) -> dict[str, Any]:
        return {"argv": self.argv, "returncode": self.returncode, "stdout": self.stdout,
                "stderr": self.stderr, "error": self.error}


def run_command(argv: Sequence[str], *, timeout: float, max_output: int = MAX_OUTPUT_CHARS) -> CommandResult:
    """Run a fixed argument list: no shell, a clean environment, no stdin, output captured and cut
    to `max_output` characters (64 Ki by default), killed after `timeout` seconds. The program is
    looked up in the system folders."""
    if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("run_command takes a non-empty list of strings (no shell command lines)")
    argv = list(argv)
    program = argv[0] if os.path.isabs(argv[0]) else find_program(argv[0])
    if program is None:
        return CommandResult(argv, None, error=f"{argv[0]} not found in {_safe_path()}")
    if timeout <= 0:
        return CommandResult(argv, None, error="no time left to run it")
    try:
        done = subprocess.run([program, *argv[1:]], shell=False, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, env=_clean_env(), check=False)
    except subprocess.TimeoutExpired as exc:
        return CommandResult(argv, None, _text(exc.stdout, max_output), _text(exc.stderr, max_output),
                             error=f"killed after {timeout:g} s")
    except OSError as exc:
        return CommandResult(argv, None, error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    return CommandResult(argv, done.returncode, _text(done.stdout, max_output),
                         _text(done.stderr, max_output))


def _text(data: bytes | str | None, limit: int = MAX_OUTPUT_CHARS) -> str:
    if data is None:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text if len(text) <= limit else text[:limit] + "\n[output cut]"
