r"""Sphinx extension: render every formula to HTML with KaTeX under node, at build time.

Why not ``sphinx.ext.mathjax``: it leaves the TeX in the page for a script to typeset in the reader's browser,
and loads that script from a CDN. Here each ``$...$`` / ``$$...$$`` / ``align*`` node is turned into KaTeX's HTML
(plus MathML for screen readers) while Sphinx writes the page, and the only assets the page needs are KaTeX's CSS
and fonts, copied from the npm package into ``_static/katex/``. Nothing is fetched at build or view time.

A formula KaTeX cannot parse is a Sphinx warning with the page and line (an error under ``sphinx-build -W``), and
the page shows the escaped TeX inside ``<code class="katex-error">`` so a check of the HTML finds it too.

Configuration (conf.py):

* ``katex_dist``: folder with ``katex.min.js``, ``katex.min.css`` and ``fonts/`` (``docs/node_modules/katex/dist``
  after ``npm ci --prefix docs``);
* ``katex_macros``: dict of KaTeX macros, e.g. ``{"\\R": "\\mathbb{R}"}``;
* ``katex_node``: the node executable (default ``node``).
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

logger = logging.getLogger(__name__)

SCRIPT = Path(__file__).with_name("katex_render.js")
STATIC_DIR = "katex"  # under the site's _static/


class KaTeXError(Exception):
    """KaTeX refused a formula (the message is KaTeX's own)."""


class KaTeX:
    """One long-lived ``node katex_render.js`` process; requests and answers are JSON lines."""

    def __init__(self, node: str, dist: Path) -> None:
        self.proc = subprocess.Popen(
            [node, str(SCRIPT), str(dist / "katex.min.js")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.cache: dict[tuple[str, bool], str] = {}

    def render(self, tex: str, display: bool, macros: dict[str, str]) -> str:
        key = (tex, display)
        if key not in self.cache:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps({"tex": tex, "display": display, "macros": macros}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise KaTeXError(f"the KaTeX process exited (status {self.proc.poll()})")
            answer = json.loads(line)
            if "error" in answer:
                raise KaTeXError(answer["error"])
            self.cache[key] = answer["html"]
        return self.cache[key]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_RENDERER: dict[int, KaTeX] = {}  # one process per Sphinx application, keyed by id(app)


def _renderer(app: Sphinx) -> KaTeX:
    if id(app) not in _RENDERER:
        _RENDERER[id(app)] = KaTeX(app.config.katex_node, Path(app.config.katex_dist))
    return _RENDERER[id(app)]


def _to_html(self: Any, node: nodes.Element, tex: str, display: bool) -> str:
    app = self.builder.app
    try:
        return _renderer(app).render(tex, display, dict(app.config.katex_macros))
    except KaTeXError as exc:
        logger.warning("KaTeX cannot render %r: %s", tex, exc, location=node, type="katex")
        return f'<code class="katex-error">{html.escape(tex)}</code>'


def _display_tex(node: nodes.math_block) -> str:
    """The TeX of a display block, with Sphinx's conventions: blank-line separated parts are stacked."""
    text = node.astext()
    if node.get("no-wrap", node.get("nowrap", False)):
        return text  # e.g. \begin{align*} ... \end{align*} from MyST's amsmath extension, passed as is
    parts = [p.strip() for p in text.split("\n\n") if p.strip()]
    parts = [rf"\begin{{aligned}}{p}\end{{aligned}}" if r"\\" in p and r"\begin" not in p else p for p in parts]
    if len(parts) == 1:
        return parts[0]
    return r"\begin{gathered}" + r"\\".join(parts) + r"\end{gathered}"


def html_visit_math(self: Any, node: nodes.math) -> None:
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate nohighlight"))
    self.body.append(_to_html(self, node, node.astext(), display=False) + "</span>")
    raise nodes.SkipNode


def html_visit_displaymath(self: Any, node: nodes.math_block) -> None:
    self.body.append(self.starttag(node, "div", CLASS="math notranslate nohighlight"))
    if node.get("number"):
        number = get_node_equation_number(self, node)
        self.body.append(f'<span class="eqno">({number})')
        self.add_permalink_ref(node, _("Link to this equation"))
        self.body.append("</span>")
    self.body.append(_to_html(self, node, _display_tex(node), display=True) + "</div>\n")
    raise nodes.SkipNode


def _builder_inited(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    dist = Path(app.config.katex_dist)
    missing = [p for p in ("katex.min.js", "katex.min.css", "fonts") if not (dist / p).exists()]
    if missing:
        raise ExtensionError(
            f"KaTeX not found in {dist} (missing {', '.join(missing)}); install it with `npm ci --prefix docs` "
            "(docs/package.json pins the version) or let docs/build.py do it"
        )
    if shutil.which(app.config.katex_node) is None:
        raise ExtensionError(f"node executable {app.config.katex_node!r} not found; KaTeX runs under node")
    app.add_css_file(f"{STATIC_DIR}/katex.min.css")


def _build_finished(app: Sphinx, exception: BaseException | None) -> None:
    renderer = _RENDERER.pop(id(app), None)
    if renderer is not None:
        renderer.close()
    if exception is not None or app.builder.format != "html":
        return
    dist = Path(app.config.katex_dist)
    dest = Path(app.outdir) / "_static" / STATIC_DIR
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(dist / "katex.min.css", dest / "katex.min.css")
    shutil.copytree(dist / "fonts", dest / "fonts", dirs_exist_ok=True)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("katex_dist", "", "html", types=[str])
    app.add_config_value("katex_macros", {}, "html", types=[dict])
    app.add_config_value("katex_node", "node", "html", types=[str])
    app.add_html_math_renderer(
        "katex_prerender",
        inline_renderers=(html_visit_math, None),
        block_renderers=(html_visit_displaymath, None),
    )
    app.connect("builder-inited", _builder_inited)
    app.connect("build-finished", _build_finished)
    # one node process per application: the read phase may be parallel, the write phase (which renders) may not
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": False}
