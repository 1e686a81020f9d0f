r"""Sphinx extension: let the project's docstrings render as the API reference without rewriting them.

The packages write their docstrings for readers of the source (STYLE.md §0 item 3): LaTeX between ``$...$`` and
free-standing headings such as ``Semantics of a check`` underlined with dashes. Two small rewrites, applied after
napoleon has turned its known sections (Parameters, Returns, Examples, ...) into fields:

* ``$x$`` outside inline literals becomes ``:math:`x```, so KaTeX renders it like every other formula;
* ``|x - y|`` (an absolute value in prose) is escaped, since reStructuredText reads it as a substitution;
* any other underlined heading becomes ``.. rubric::`` (a section title inside a docstring is an error to docutils).
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx

_INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?!\$)([^$`]+?)(?<![\\\s])\$(?![\w$])")
_SUBSTITUTION = re.compile(r"(?<![\\\w|])\|(?=\S)([^|`]*?\S)\|(?![\w|])")
_CODE = re.compile(r"(``.+?``|:\w+:`[^`]*`|`[^`]*`_?)")  # inline literals, roles, interpreted text
_UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")


def _outside_code(line: str, pattern: re.Pattern[str], repl) -> str:
    parts = _CODE.split(line)  # odd parts are code spans: left alone
    return "".join(p if i % 2 else pattern.sub(repl, p) for i, p in enumerate(parts))


def _math_roles(line: str) -> str:
    if line.strip() == "|" or line.lstrip().startswith(("| ", "+-", "+=")):  # a grid table or a line block
        return line
    line = _outside_code(line, _INLINE_MATH, lambda m: f":math:`{m.group(1)}`")
    return _outside_code(line, _SUBSTITUTION, lambda m: f"\\|{m.group(1)}\\|")


def _rubrics(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        title = lines[i].strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if title and not title.startswith(("..", ":")) and _UNDERLINE.match(nxt) and len(nxt.strip()) >= len(title):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            out += [f"{indent}.. rubric:: {title}", ""]
            i += 2
            continue
        out.append(lines[i])
        i += 1
    return out


_CODE_LINE = re.compile(r"^\s+(from |import |>>> |[\w.\[\], ]+ = |[\w.]+\(|# )")


def _literal_blocks(lines: list[str]) -> list[str]:
    """An indented block of code after a blank line (``    trace = forward(X, ...)``) becomes a literal block.

    reStructuredText would read it as a block quote and reflow it into one paragraph.
    """
    out: list[str] = []
    for i, line in enumerate(lines):
        prev = out[-2] if len(out) >= 2 else ""
        if (
            _CODE_LINE.match(line)
            and i > 0
            and not lines[i - 1].strip()
            and prev.strip()
            and not prev.startswith((" ", "..", ":"))
            and not prev.rstrip().endswith("::")
        ):
            out += ["::", ""]
        out.append(line)
    return out


def process_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    lines[:] = _literal_blocks(_rubrics([_math_roles(line) for line in lines]))


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.napoleon")  # napoleon's handler first, ours after it
    app.connect("autodoc-process-docstring", process_docstring, priority=600)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
