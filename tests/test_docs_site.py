"""The documentation site: it builds with warnings as errors, its formulas are rendered, its anchors exist.

Needs the docs toolchain: the ``docs`` extra (Sphinx, MyST) and node with KaTeX (``npm ci --prefix docs``, or npm
so that docs/build.py can run it). Without it every test here is skipped with the reason; CI installs it.

By default the site is built once into a temporary folder by ``python docs/build.py``, running only the
reference's falsification checks (the records the errata page shows). With ``ALTGRAD_DOCS_HTML=DIR`` the tests
check a site already built there instead (CI builds it from the main job's report, then runs these tests on it).
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs_examples import _load  # docs/ modules by path, one loader for both docs test files

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _missing_toolchain() -> str | None:
    for module, extra in (("sphinx", "sphinx"), ("myst_parser", "myst-parser")):
        if importlib.util.find_spec(module) is None:
            return f'the docs toolchain is absent: {extra} is not installed (pip install ".[docs]")'
    if shutil.which("node") is None:
        return "the docs toolchain is absent: node is not on PATH (KaTeX renders the formulas under node)"
    if not (DOCS / "node_modules" / "katex").exists() and shutil.which("npm") is None:
        return "the docs toolchain is absent: KaTeX is not installed and npm is not on PATH (npm ci --prefix docs)"
    return None


pytestmark = pytest.mark.skipif(_missing_toolchain() is not None, reason=str(_missing_toolchain()))


@pytest.fixture(scope="module")
def sitecheck():
    return _load("sitecheck")


@pytest.fixture(scope="module")
def generate():
    return _load("generate")


@pytest.fixture(scope="module")
def site(tmp_path_factory, generate) -> Path:
    given = os.environ.get("ALTGRAD_DOCS_HTML")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("site")
    # real records for the errata, kept cheap: the reference's falsification checks (about 2 s in all); every
    # other entry is shown as "not run in this report", which the catalogue must handle too
    wrong = [e.id for e in generate.entries({"records": []})
             if e.expected == "WRONG-AS-PRINTED" and e.id.startswith("ref.")]  # fmt: skip
    cmd = [sys.executable, str(DOCS / "build.py"), "--out", str(out), "--only", *wrong]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (
        f"docs/build.py failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    )
    return out


def _term_pages(generate) -> list[str]:
    return [f"terms/{t.slug}.html" for t in generate.TERMS]


def test_site_builds_with_warnings_as_errors_and_has_every_page(site, generate):
    # build.py runs sphinx-build -W; reaching here means no warning was raised
    for page in ["index", "getting-started", "conventions", "catalogue", "errata", "results", "api", "terms/index",
                 "terms/more", *(f"terms/{t.slug}" for t in generate.TERMS)]:  # fmt: skip
        assert (site / f"{page}.html").is_file(), page
    for pkg in generate.API_PACKAGES:
        assert (site / "_generated" / "api" / f"{pkg}.html").is_file(), pkg


def test_derivation_pages_show_rendered_formulas_and_no_raw_tex(site, generate, sitecheck):
    for page in [*_term_pages(generate), "terms/index.html", "terms/more.html", "errata.html", "conventions.html"]:
        doc = sitecheck.parse(site / page)
        assert doc.katex >= 3, f"{page}: only {doc.katex} KaTeX-rendered formulas"
        assert doc.katex_errors == 0, page
        assert sitecheck.raw_tex(site / page) == [], f"{page}: TeX left unrendered"


def test_rendered_formulas_carry_katex_html_and_mathml(site):
    html = (site / "terms" / "d8.html").read_text(encoding="utf-8")
    assert '<span class="katex-html"' in html
    assert "<math" in html and 'encoding="application/x-tex"' in html  # MathML with the source, for screen readers


def test_raw_tex_check_catches_an_unrendered_formula_but_not_code(sitecheck, tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<p>The term $D_8 = f^{\\top} G$ and \\(x\\)</p>", encoding="utf-8")
    assert sitecheck.raw_tex(page), "a $...$ formula left in a paragraph must be found"
    code = tmp_path / "code.html"
    code.write_text('<pre>$ echo "$HOME" \\(x\\)</pre><p>costs 5 $ and 6 $</p>', encoding="utf-8")
    assert sitecheck.raw_tex(code) == []


def test_every_registry_entry_has_an_anchor_on_the_catalogue_page(site, sitecheck):
    from proofs_check import registry as reg

    ids = sitecheck.parse(site / "catalogue.html").ids
    missing = [i for i in reg.load_all() if i not in ids]
    assert not missing, f"no anchor on catalogue.html for {missing}"


def test_every_term_page_links_to_the_catalogue_entry_of_a_check(site, generate, sitecheck):
    catalogue_ids = sitecheck.parse(site / "catalogue.html").ids
    for page in _term_pages(generate):
        html = (site / page).read_text(encoding="utf-8")
        targets = re.findall(r'href="\.\./catalogue\.html#([^"]+)"', html)
        assert targets, f"{page} links to no check"
        assert all(t in catalogue_ids for t in targets), f"{page}: a link to a missing anchor"


def test_term_pages_include_their_generated_derivation_when_it_exists(site, generate):
    for term in generate.TERMS:
        present = [d for d in term.derivations if any(generate._norm(p.stem) == generate._norm(d)
                                                      for p in generate.derivation_files())]  # fmt: skip
        html = (site / "terms" / f"{term.slug}.html").read_text(encoding="utf-8")
        for d in present:
            assert f'id="{generate.derivation_label(d)}"' in html, f"{term.slug}: derivation {d} not included"


def test_no_page_loads_anything_from_the_network(site, sitecheck):
    for page in site.rglob("*.html"):
        assert sitecheck.external_assets(page) == [], page
    assert sitecheck.css_imports(site) == []


def test_katex_stylesheet_and_fonts_ship_with_the_site(site):
    css = site / "_static" / "katex" / "katex.min.css"
    assert css.is_file()
    fonts = re.findall(r"url\((fonts/[^)]+\.woff2)\)", css.read_text(encoding="utf-8"))
    assert fonts, "katex.min.css names no woff2 font"
    for font in fonts:
        assert (css.parent / font).is_file(), font
    assert 'href="_static/katex/katex.min.css' in (site / "index.html").read_text(encoding="utf-8")


_PROBE = """<script>
window.addEventListener("load", async () => {
  await document.fonts.ready;
  const k = document.querySelectorAll(".katex");
  const r = k.length ? k[0].getBoundingClientRect() : { width: 0, height: 0 };
  const faces = [...document.fonts].filter((f) => f.family.replace(/"/g, "").startsWith("KaTeX_"));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({ katex: k.length, width: r.width, height: r.height,
    loaded: faces.filter((f) => f.status === "loaded").map((f) => f.family),
    failed: faces.filter((f) => f.status === "error").length });
  document.body.appendChild(out);
});
</script>"""


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no headless browser (Debian: apt-get install chromium)")
def test_a_derivation_page_opened_in_headless_chromium_lays_out_katex_with_its_offline_fonts(site):
    # the page as shipped, plus a probe script that reports what the browser did once fonts were settled
    page = site / "terms" / "d8.html"
    probe = page.with_name("_probe_d8.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    try:
        cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
               "--dump-dom", probe.as_uri()]  # fmt: skip
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    finally:
        probe.unlink()
    found = re.search(r'<pre id="probe">([^<]*)</pre>', dom)
    assert found, "the probe script did not run"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["katex"] >= 3 and seen["width"] > 0 and seen["height"] > 0, seen
    assert {"KaTeX_Main", "KaTeX_Math"} <= {f.strip('"') for f in seen["loaded"]}, seen  # fonts from _static/katex
    assert seen["failed"] == 0, seen


def test_every_tutorial_and_derivation_is_offered_as_an_executed_notebook(site):
    notebooks = _load("notebooks")
    expected = [p.stem for p in notebooks.sources()]
    expected += [f"derivation_{p.stem}" for p in sorted((DOCS / "derivations").glob("*.md"))
                 if notebooks.derivation_term(p)]  # fmt: skip
    offered = {p.stem: p for p in site.glob("_downloads/*/*.ipynb")}
    assert sorted(offered) == sorted(expected) and len(expected) > 20
    for name, path in offered.items():
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{name}: not executed"
        assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"], name
    page = (site / "getting-started.html").read_text(encoding="utf-8")
    for name in expected:
        assert re.search(rf'href="_downloads/[^"]+/{re.escape(name)}\.ipynb"', page), name


def test_the_sidebar_names_each_entry_once(site):
    page = (site / "results.html").read_text(encoding="utf-8")
    side = page.split('class="sidebar-tree"', 1)[1].split("</nav>", 1)[0]
    captions = re.findall(r'<span class="caption-text">([^<]+)</span>', side)
    # the pages themselves (first level), whose names sat next to a caption of the same name before
    links = [html.unescape(re.sub(r"<[^>]+>", "", t)).strip()
             for t in re.findall(r'<li class="toctree-l1[^"]*"><a class="[^"]*reference internal"[^>]*>(.*?)</a>', side,
                                 flags=re.S)]  # fmt: skip
    names = captions + links
    assert "Results" in names and len(names) == len(set(names)), names


_LAYOUT = """<script>
window.addEventListener("load", () => {
  const box = (s) => { const e = document.querySelector(s); if (!e) return null;
                       const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top,
                       width: r.width, visible: getComputedStyle(e).display !== "none" && r.width > 0}; };
  const out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify({ viewport: window.innerWidth, scroll: document.documentElement.scrollWidth,
    content: box("article"), nav: box(".sidebar-drawer") });
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(_browser() is None, reason="no headless browser (Debian: apt-get install chromium)")
@pytest.mark.parametrize("width", [1280, 400])
def test_the_site_reads_well_at_desktop_and_phone_widths_in_headless_chromium(site, width, tmp_path):
    page = site / "terms" / "d8.html"
    probe = page.with_name(f"_layout_{width}.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _LAYOUT + "</body>"), encoding="utf-8")
    shot = tmp_path / f"d8-{width}.png"
    base = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--window-size={width},900", "--virtual-time-budget=5000"]  # fmt: skip
    try:
        dom = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
        subprocess.run([*base, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    finally:
        probe.unlink()
    found = re.search(r'<pre id="layout">([^<]*)</pre>', dom)
    assert found, "the layout probe did not run"
    seen = json.loads(html.unescape(found.group(1)))
    assert shot.is_file() and shot.stat().st_size > 10_000  # a screenshot with something drawn on it
    assert seen["scroll"] <= seen["viewport"] + 1, seen  # nothing wider than the window
    if width >= 1280:
        # navigation beside the text, not stacked above a narrow column
        assert seen["nav"]["visible"] and seen["nav"]["right"] <= seen["content"]["left"] + 1, seen
        assert seen["content"]["width"] >= 640, seen
    else:
        assert seen["content"]["width"] >= 0.85 * width, seen  # the text takes the phone's width
