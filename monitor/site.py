"""Render the static directory site from a snapshot (edge: owns jinja2).

For now one page: `index.html`, every endpoint with its status and figures. Written to a
temporary file and renamed into place, so a visitor never sees a half-written page.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from monitor.snapshot import MonitorSnapshot

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def environment(templates: Path = TEMPLATES) -> Environment:
    """Return the Jinja2 environment: autoescaping everywhere, undefined names are errors."""
    return Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_site(snapshot: MonitorSnapshot, output_dir: Path) -> None:
    """Write the site for `snapshot` into `output_dir` (created if missing), atomically per file."""
    page = environment().get_template("index.html").render(snapshot=snapshot)
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(output_dir / "index.html", page.encode())


def _write_atomically(path: Path, content: bytes) -> None:
    if path.exists() and path.read_bytes() == content:
        return  # unchanged: keep the file (and its mtime) as it is
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
