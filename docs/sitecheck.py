r"""Checks of the built HTML: the formulas are rendered, nothing loads from the network, the anchors exist.

Used twice: by ``docs/build.py`` right after ``sphinx-build`` (the build fails on any finding), and by
``tests/test_docs_site.py`` (one test per property). Standard library only.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

# TeX that KaTeX would have consumed: $...$, $$...$$, \( \), \[ \], or a bare LaTeX command such as \frac{
RAW_TEX = re.compile(r"\$\$|\$[^$\s][^$]{0,200}?\$|\\\(|\\\)|\\\[|\\\]|\\(?:frac|begin|end|top|beta|odot|mathrm)\b")
_SKIP_TAGS = {"script", "style", "pre", "code", "kbd", "samp", "textarea", "math"}


class _Text(HTMLParser):
    """The page's visible text outside rendered math, code and scripts; and the ids and external assets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.text: list[str] = []
        self.ids: set[str] = set()
        self.external: list[str] = []
        self.katex = 0
        self.katex_errors = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if "katex" in classes:
            self.katex += 1
        if "katex-error" in classes:
            self.katex_errors += 1
        for attr in ("src", "href"):
            url = a.get(attr) or ""
            loads = tag in ("script", "img", "iframe", "source", "video", "audio") or (
                tag == "link" and "stylesheet" in (a.get("rel") or "") or tag == "link" and attr == "href"
            )
            if loads and re.match(r"^(https?:)?//", url):
                self.external.append(f"<{tag} {attr}={url}>")
        if tag in ("br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source"):
            return
        parent_skipped = bool(self.stack) and self.stack[-1][1]
        skipped = parent_skipped or tag in _SKIP_TAGS or "katex" in classes or "katex-display" in classes
        self.stack.append((tag, skipped))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1][1]):
            self.text.append(data)


def parse(path: Path) -> _Text:
    p = _Text()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


def raw_tex(path: Path) -> list[str]:
    """Snippets of TeX left in the visible text of a page (empty when every formula was rendered)."""
    text = " ".join(parse(path).text)
    return [text[max(0, m.start() - 40) : m.end() + 40] for m in RAW_TEX.finditer(text)]


def external_assets(path: Path) -> list[str]:
    """Scripts, stylesheets, images or frames a page would fetch from the network."""
    return parse(path).external


def css_imports(site: Path) -> list[str]:
    """``@import`` / ``url(http...)`` in the site's CSS (fonts from a CDN, for instance)."""
    out = []
    for css in site.rglob("*.css"):
        for m in re.finditer(
            r"@import\s+url\(\s*['\"]?(https?:)?//[^)]*\)|url\(\s*['\"]?(https?:)?//[^)]*\)", css.read_text("utf-8")
        ):
            out.append(f"{css.relative_to(site)}: {m.group(0)}")
    return out


def problems(site: Path, math_pages: list[str], catalogue_ids: list[str]) -> list[str]:
    """Everything wrong with a built site, as sentences (empty list: the site is fine)."""
    found = []
    for page in sorted(site.rglob("*.html")):
        rel = str(page.relative_to(site))
        doc = parse(page)
        if doc.external:
            found.append(f"{rel}: loads from the network: {doc.external[:3]}")
        if doc.katex_errors:
            found.append(f"{rel}: {doc.katex_errors} formula(s) KaTeX could not render")
    found += [f"CSS loads from the network: {c}" for c in css_imports(site)]
    for name in math_pages:
        page = site / name
        if not page.exists():
            found.append(f"{name}: page missing")
            continue
        if parse(page).katex == 0:
            found.append(f"{name}: no rendered (KaTeX) formula on a page that must show mathematics")
        left = raw_tex(page)
        if left:
            found.append(f"{name}: raw TeX left in the page, e.g. {left[:2]}")
    cat = site / "catalogue.html"
    ids = parse(cat).ids if cat.exists() else set()
    missing = [i for i in catalogue_ids if i not in ids]
    if missing:
        found.append(f"catalogue.html: no anchor for {len(missing)} registry entries, e.g. {missing[:5]}")
    return found
