"""report.md as one self-contained HTML page."""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path


def markdown_to_html(markdown: str, base_dir: Path, title: str) -> str:
    """A self-contained HTML page: the Markdown rendered, every local image embedded as a data URI."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)

    def embed(match: re.Match) -> str:
        path = base_dir / match.group(1)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return f'src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"'

    body = re.sub(r'src="(?!data:|https?:)([^"]+)"', embed, body)
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 7px}"
             "th{background:#f3f3f3}img{max-width:100%}code,pre{background:#f6f6f6}pre{padding:0.6em;overflow-x:auto}"
             "blockquote{border-left:4px solid #d55;margin-left:0;padding-left:1em;color:#333}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{style}</style></head>\n<body>\n{body}</body></html>\n")
