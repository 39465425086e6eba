"""Values from the data or the URL shown as text, never as markdown (docs/limits.md).

Streamlit parses markdown in st.header, st.caption, st.error, button and link labels, ...
A run name like `![p](http://host/x.png)` would make every viewer's browser fetch that URL,
and `[Session expired – log in](https://evil.example)` in a `?run_id=` would put a phishing
link inside the app's own error box. So:

- `md(value)`: the value as markdown that renders as exactly its text: every ASCII
  punctuation character is backslash-escaped (CommonMark lets any of them be escaped, and
  an escaped character never starts a link, an image, emphasis, a directive, LaTeX or an
  autolink), line breaks become spaces.
  Escapes do not stop GFM's literal autolinks: the browser's markdown (remark-gfm) finds
  `https://...`, `www.` and `name@host.tld` in the text after the escapes are read, when
  they follow a space, punctuation or the start. So a word joiner (U+2060, invisible, no
  width) goes before each `http://`, `https://` and `www.` and before each `@`: the text
  shows the same and nothing in it becomes a link.
- `http_url(value)`: the value when it is an absolute http(s) URL, else None. Links and
  media are built only from these.
- `md_link(title, url)`: a markdown link with an escaped title to a checked URL, or the
  escaped title alone when the URL is not http(s).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\s]")
WORD_JOINER = "\u2060"
# Where GFM's literal autolinks start: a URL scheme or www. (any case), an e-mail's @.
_AUTOLINK_START = re.compile(r"(?i)(?=https?://|www\.|@)")


def md(value: Any) -> str:
    """`value` (str() of it) as markdown that shows exactly its text, on one line, with no
    literal autolink (see the module docstring)."""
    text = _AUTOLINK_START.sub(WORD_JOINER, _LINE_BREAKS.sub(" ", str(value)))
    return _PUNCTUATION.sub(r"\\\1", text)


def http_url(value: Any) -> str | None:
    """An absolute http:// or https:// URL with a host and no whitespace or control
    characters, else None (javascript:, data:, relative paths, ...)."""
    if not isinstance(value, str) or _CONTROL.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def md_link(title: Any, url: Any) -> str:
    """`[title](url)` with the title escaped and the URL checked (http_url) and its markdown
    delimiters percent-encoded; the escaped title alone when the URL is not http(s)."""
    checked = http_url(url)
    if checked is None:
        return md(title)
    target = quote(checked, safe=":/?#@!$&'*+,;=%~-._")
    return f"[{md(title)}]({target})"
