"""The static directory site (edge: owns jinja2): a snapshot and its details -> files.

`render_site` builds every page, JSON document, badge and feed into a staging directory and
swaps it in atomically; unchanged files keep their bytes and mtime. See `render.py`.
"""

from __future__ import annotations

from monitor.site.publish import RenderReport, SiteError
from monitor.site.render import TEMPLATES, ProgressFunction, environment, render_site

__all__ = [
    "TEMPLATES",
    "ProgressFunction",
    "RenderReport",
    "SiteError",
    "environment",
    "render_site",
]
