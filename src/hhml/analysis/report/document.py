"""A small document model rendered to Markdown, HTML and JSON.

A report is a list of blocks (heading, paragraph, table, figure); every number in a
table is also kept in a nested ``numbers`` mapping that becomes ``report.json``. HTML
output escapes every string (run names and config values come from files).

Public names: ``Document``.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hhml.utils import atomic_write_text

__all__ = ["Document"]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return _jsonable(value.item())
    return value


@dataclass
class Document:
    """Blocks of a report plus the numbers behind them."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def heading(self, text: str, level: int = 2) -> None:
        """Add a section heading."""
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        """Add a paragraph of plain text."""
        self.blocks.append(("paragraph", text))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        """Add a table (cells are formatted numbers or text)."""
        self.blocks.append(("table", (header, rows)))

    def figure(self, file: str, caption: str) -> None:
        """Add a figure (a PNG next to the report) with its caption."""
        self.blocks.append(("figure", (file, caption)))
        self.numbers.setdefault("figures", {})[file] = caption

    # ------------------------------------------------------------ rendering
    def markdown(self) -> str:
        """The report as Markdown."""
        out = [f"# {self.title}", ""]
        for kind, content in self.blocks:
            if kind == "heading":
                level, text = content
                out += ["#" * level + " " + text, ""]
            elif kind == "paragraph":
                out += [content, ""]
            elif kind == "table":
                header, rows = content
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "---|" * len(header))
                for row in rows:
                    cells = [_fmt(c).replace("|", "\\|") for c in row]
                    out.append("| " + " | ".join(cells) + " |")
                out.append("")
            elif kind == "figure":
                file, caption = content
                out += [f"![{caption}]({file})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        """The report as a self-contained HTML page (figures are linked PNGs)."""
        esc = html.escape
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{esc(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:.25em .6em;text-align:right}th{background:#f4f4f4}"
            "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
            "figcaption{color:#444;font-size:.9em}</style>",
            "</head><body>",
            f"<h1>{esc(self.title)}</h1>",
        ]
        for kind, content in self.blocks:
            if kind == "heading":
                level, text = content
                out.append(f"<h{level}>{esc(text)}</h{level}>")
            elif kind == "paragraph":
                out.append(f"<p>{esc(content)}</p>")
            elif kind == "table":
                header, rows = content
                out.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
                for row in rows:
                    out.append("<tr>" + "".join(f"<td>{esc(_fmt(c))}</td>" for c in row) + "</tr>")
                out.append("</table>")
            elif kind == "figure":
                file, caption = content
                out.append(
                    f'<figure><img src="{esc(file)}" alt="{esc(caption)}">'
                    f"<figcaption>{esc(caption)}</figcaption></figure>"
                )
        out.append("</body></html>")
        return "\n".join(out)

    def json(self) -> str:
        """Every number of the report (``numbers``) as JSON."""
        return json.dumps(_jsonable(self.numbers), indent=2, allow_nan=False)

    def write(self, out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
        """Write ``report.<fmt>`` for each format (``md``, ``html``, ``json``) atomically;
        ``report.json`` is always written."""
        written = []
        renderers = {"md": self.markdown, "html": self.html, "json": self.json}
        for fmt in dict.fromkeys((*formats, "json")):
            path = out_dir / f"report.{fmt}"
            atomic_write_text(path, renderers[fmt]())
            written.append(path)
        return written
