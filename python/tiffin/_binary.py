"""Finds the `tiffin` command the module drives, and runs it.

The module is a thin layer over the `tiffin` binary, as uv's and ruff's Python packages are over
theirs: one implementation of pack, verify and predict, never a second one in Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

__all__ = ["TiffinError", "find_tiffin", "run", "run_json", "run_report"]


class TiffinError(RuntimeError):
    """A `tiffin` command failed; the message is tiffin's own."""


def find_tiffin() -> Path:
    """The `tiffin` binary: `$TIFFIN_BIN`, else the one a wheel installed beside this Python's
    scripts, else the first on `PATH`."""
    named = os.environ.get("TIFFIN_BIN")
    if named:
        path = Path(named)
        if not path.is_file():
            raise TiffinError(f"TIFFIN_BIN names {named}, which is not a file")
        return path
    exe = "tiffin" + (".exe" if sys.platform == "win32" else "")
    for scheme in {sysconfig.get_default_scheme(), f"{os.name}_user"}:
        try:
            scripts = Path(sysconfig.get_path("scripts", scheme))
        except KeyError:
            continue
        if (scripts / exe).is_file():
            return scripts / exe
    found = shutil.which("tiffin")
    if found:
        return Path(found)
    raise TiffinError(
        "the tiffin command was not found: install the tiffin wheel (pip install tiffin), put "
        "tiffin on PATH, or name it in TIFFIN_BIN"
    )


def run(*args: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """Runs `tiffin ARGS...` quietly and returns its standard output; a failure raises
    TiffinError with what tiffin printed."""
    command = [str(find_tiffin()), "-q", *map(str, args)]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).removeprefix("error: ")
        raise TiffinError(detail or f"tiffin {args[0]} failed with exit code {done.returncode}")
    return done.stdout


def run_json(*args: str | os.PathLike[str]) -> Any:
    """Runs a tiffin command with `--json` and returns what it printed, decoded."""
    return json.loads(run(*args, "--json"))


def run_report(*args: str | os.PathLike[str]) -> tuple[bool, Any]:
    """Runs a checking command with `--json` (verify, doctor): whether it passed, and the
    report it printed either way."""
    command = [str(find_tiffin()), "-q", *map(str, args), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        detail = done.stderr.strip().removeprefix("error: ")
        raise TiffinError(detail or f"tiffin {args[0]} printed no report") from None
    return done.returncode == 0, report
