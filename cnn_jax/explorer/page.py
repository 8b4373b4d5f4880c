"""The explorer page: one offline HTML file, with its CSS, JavaScript and data inline.

    path = write_page(sweep_data("sweeps/filter"), "sweeps/filter/explorer")  # …/index.html
    serve("sweeps/filter/explorer", port=8000)   # optional: http://localhost:8000/

The page needs no server, no network and no library: `static/shapes.js` is the size formula of
`cnn_jax.shapes` (tests check that both agree), `static/explorer.js` draws everything with SVG and
canvas from the JSON in the page.
"""

from __future__ import annotations

import functools
import http.server
import json
import math
from pathlib import Path
from typing import Any

from cnn_jax.train.logs import atomic_write_text

STATIC = Path(__file__).parent / "static"
PAGE_NAME = "index.html"


def _json_for_script(data: dict[str, Any]) -> str:
    """JSON that cannot end its <script> element: every '<' is written as \\u003c."""
    def clean(value: Any) -> Any:  # NaN/inf are not JSON
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    text = json.dumps(clean(data), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")  # still JSON; no '</script>' or '<!--' in the page


def render_page(data: dict[str, Any]) -> str:
    """The page's HTML for `data` (`cnn_jax.explorer.collect`)."""
    from html import escape

    template = (STATIC / "index.html").read_text()
    parts = {"css": (STATIC / "explorer.css").read_text(),
             "shapes_js": (STATIC / "shapes.js").read_text(),
             "explorer_js": (STATIC / "explorer.js").read_text(),
             "data": _json_for_script(data), "title": escape(str(data.get("title", "")))}
    for name in ("title", "css", "shapes_js", "explorer_js", "data"):  # data last: never rescanned
        template = template.replace("{{" + name + "}}", parts[name])
    return template


def write_page(data: dict[str, Any], directory: str | Path) -> Path:
    """Writes directory/index.html (atomically); returns its path."""
    path = Path(directory) / PAGE_NAME
    atomic_write_text(path, render_page(data))
    return path


def serve(directory: str | Path, port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serves `directory` on http://host:port/ until interrupted (http.server, localhost only)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        print(f"serving http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
        server.serve_forever()
