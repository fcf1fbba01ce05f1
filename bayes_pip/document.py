"""The document model of every report page, and its two renderers (Markdown and HTML).

A page is a :class:`Document`: a title and a list of blocks (heading, paragraph, quote, facts,
items, table, figures). Report sections are functions that return blocks
(:mod:`bayes_pip.pages`); the renderers walk the blocks, so a section is written once and
escaping is done in one place: text from data files can never become markup, a link or a new
table column in either format.

Inline text is a plain string or a tuple of parts: strings, :class:`Code`, :class:`Strong` and
:class:`Link`.
"""

from __future__ import annotations

import base64
import html
import re
import urllib.parse
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    href: str   # a file beside the page (see local_href)


Inline = "str | tuple"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: object        # Inline
    note: bool = False  # secondary text (smaller, grey in HTML)


@dataclass(frozen=True)
class Quote:
    """Text meant to be pasted (the discussion-section sentences)."""
    text: str


@dataclass(frozen=True)
class Facts:
    """Labelled one-line facts: (label, value) pairs."""
    items: tuple


@dataclass(frozen=True)
class Items:
    """A bulleted list; each item is inline text."""
    items: tuple
    note: bool = False


@dataclass(frozen=True)
class Table:
    header: tuple
    body: tuple


@dataclass(frozen=True)
class Figures:
    """PNG figures: (file name, PNG) pairs, the PNG as bytes or a :class:`LazyPNG`. Markdown
    links the files written beside the page; HTML embeds them, so the page is self-contained."""
    items: tuple


class LazyPNG:
    """A figure drawn when first asked for: ``make()`` gives its PNG bytes, kept from then on.
    A page holds these, so a report used as a library (its Markdown, its records) draws no
    figure until the files are written or the HTML is made. Pickled (a report's worker
    processes), it is drawn first and travels as plain bytes."""

    __slots__ = ("_make", "_png")

    def __init__(self, make):
        self._make, self._png = make, None

    def png(self) -> bytes:
        if self._png is None:
            self._png, self._make = self._make(), None
        return self._png

    def __reduce__(self):
        return bytes, (self.png(),)


def png_of(png) -> bytes:
    """The bytes of a figure held as bytes or as a LazyPNG."""
    return png.png() if isinstance(png, LazyPNG) else png


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)
    wide: bool = False   # a wide table (HTML: a wider page)

    def figures(self) -> dict[str, bytes]:
        """Every figure of the page, by file name."""
        return {name: png_of(png) for b in self.blocks if isinstance(b, Figures)
                for name, png in b.items}


def local_href(name: str) -> str:
    """A relative link to a file beside this one: percent-encoded, never a scheme or a path."""
    return "./" + urllib.parse.quote(name, safe="")


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------

# what can turn text into markup or structure: raw HTML and autolinks (< then a letter, /, ! or
# ?), entities, a table cell's end, inline links and images, line ends (and the backslash, so
# that an escape in the data cannot undo ours). Emphasis and code spans are left alone: they
# change no structure, and escaping them would fill the raw text with backslashes.
_MD_SPECIAL = re.compile(r"\\|\||<(?=[A-Za-z/!?])|&(?=[A-Za-z#])|\]\(|[\x00-\x1f\x7f]")


def _md_sub(m: re.Match) -> str:
    ch = m.group(0)
    if ch == "<":
        return "&lt;"
    if ch == "&":
        return "&amp;"
    if ch == "](":
        return "]\\("
    if len(ch) == 1 and (ord(ch) < 0x20 or ch == "\x7f"):
        return " "
    return "\\" + ch


def md_escape(text) -> str:
    """Text from data files (names, labels, dataset.toml fields, moderator levels, prior
    sources) as literal Markdown: it never becomes HTML, a link, an image or a new table column.
    Text without such characters is unchanged (our numbers, "[0.52, 1.04]", "> 0.999")."""
    return _MD_SPECIAL.sub(_md_sub, str(text))


def md_table(header, body) -> str:
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _md_inline(text) -> str:
    if isinstance(text, str):
        return md_escape(text)
    if isinstance(text, Code):
        return f"`{text.text.replace('`', '')}`"
    if isinstance(text, Strong):
        return f"**{md_escape(text.text)}**"
    if isinstance(text, Link):
        return f"[{md_escape(text.text)}]({text.href})"
    return "".join(_md_inline(part) for part in text)


def _md_block(b) -> list[str]:
    if isinstance(b, Heading):
        return ["#" * b.level + " " + md_escape(b.text)]
    if isinstance(b, Paragraph):
        return [_md_inline(b.text)]
    if isinstance(b, Quote):
        return ["> " + md_escape(b.text)]
    if isinstance(b, Facts):
        return [f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in b.items]
    if isinstance(b, Items):
        return [f"- {_md_inline(item)}" for item in b.items]
    if isinstance(b, Table):
        return [md_table(b.header, b.body)]
    if isinstance(b, Figures):
        return [f"![{md_escape(name)}]({local_href(name)})" for name, _ in b.items]
    raise TypeError(f"not a block: {b!r}")


def markdown(doc: Document) -> str:
    """The page as Markdown: blocks separated by blank lines."""
    lines = []
    for b in doc.blocks:
        lines += _md_block(b) + [""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

HTML_STYLE = """body{font-family:Georgia,serif;max-width:60em;margin:2em auto;padding:0 1em;
line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:0.92em}
td,th{border:1px solid #bbb;padding:0.25em 0.6em;text-align:left}th{background:#eee}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}.note{color:#555;font-size:0.92em}
blockquote{border-left:4px solid #1f77b4;margin:1em 0;padding:0.2em 1em;background:#f5f8fc}
body.wide{max-width:98em}td{white-space:nowrap}td:first-child{white-space:normal}
.scroll{overflow-x:auto}"""


def html_table(header, body) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in body)
    return (f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
            f"</table></div>")


def img_tag(png: bytes, alt: str) -> str:
    return (f"<img alt=\"{html.escape(alt)}\" "
            f"src=\"data:image/png;base64,{base64.b64encode(png).decode('ascii')}\">")


def _html_inline(text) -> str:
    if isinstance(text, str):
        return html.escape(text)
    if isinstance(text, Code):
        return f"<code>{html.escape(text.text)}</code>"
    if isinstance(text, Strong):
        return f"<b>{html.escape(text.text)}</b>"
    if isinstance(text, Link):
        return f"<a href=\"{html.escape(text.href)}\">{html.escape(text.text)}</a>"
    return "".join(_html_inline(part) for part in text)


def _html_block(b) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{html.escape(b.text)}</h{b.level}>"
    if isinstance(b, Paragraph):
        cls = " class=\"note\"" if b.note else ""
        return f"<p{cls}>{_html_inline(b.text)}</p>"
    if isinstance(b, Quote):
        return f"<blockquote>{html.escape(b.text)}</blockquote>"
    if isinstance(b, Facts):
        return "<ul>" + "".join(f"<li><b>{html.escape(k)}:</b> {html.escape(str(v))}</li>"
                                for k, v in b.items) + "</ul>"
    if isinstance(b, Items):
        cls = " class=\"note\"" if b.note else ""
        return "<ul>" + "".join(f"<li{cls}>{_html_inline(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        return html_table(b.header, b.body)
    if isinstance(b, Figures):
        return "\n".join(img_tag(png_of(png), name) for name, png in b.items)
    raise TypeError(f"not a block: {b!r}")


def html_page(doc: Document) -> str:
    """The page as one self-contained HTML file (figures embedded)."""
    cls = ' class="wide"' if doc.wide else ""
    body = "\n".join(_html_block(b) for b in doc.blocks)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(doc.title)}</title><style>{HTML_STYLE}</style></head>"
            f"<body{cls}>\n{body}\n</body></html>\n")
