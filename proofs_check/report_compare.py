r"""Compare two runs record by record: ``altgrad report --compare OLD NEW [--threshold T]`` (issue 9 item 5).

OLD and NEW are ``report.json`` files (or ``altgrad check --json`` files, or report directories); an older schema
is upgraded first. Records are matched by id. Reported:

* ids added and removed;
* verdict changes (and changes of the expected status, when the registry changed it);
* changes of ``verified`` (a check that gained or lost its verified standing) and mutants that survive in NEW but
  were killed (or not declared) in OLD;
* ``observed`` changes beyond the relative threshold T: $|o_{new} - o_{old}| > T \max(|o_{old}|, |o_{new}|)$
  (both numbers; default T = 0.5, i.e. a change by more than half of the larger value; a figure at rounding
  level moves by that much between seeds, so compare runs of one seed when you look for regressions).

**Exit status**: 1 when NEW has a ``CONTRADICTS`` or ``ERROR`` record that OLD did not have (a new failure, also
for an id added with a failing verdict), else 0 (2 when a file cannot be read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from proofs_check.report_doc import CONTRADICTS, ERROR

DEFAULT_THRESHOLD = 0.5
FAILED = (CONTRADICTS, ERROR)


@dataclass
class Comparison:
    old_run: str
    new_run: str
    threshold: float
    added: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    verdicts: list[tuple[str, str, str]] = field(default_factory=list)  # (id, old, new)
    expected: list[tuple[str, str, str]] = field(default_factory=list)
    verified: list[tuple[str, bool, bool]] = field(default_factory=list)
    survivors: list[tuple[str, list[str]]] = field(default_factory=list)  # (id, mutants newly surviving)
    observed: list[tuple[str, float, float, float]] = field(default_factory=list)  # (id, old, new, rel change)
    new_failures: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 1 if self.new_failures else 0


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def relative_change(old: float, new: float) -> float:
    """$|new - old| / \\max(|old|, |new|)$ (0 when both are 0)."""
    scale = max(abs(old), abs(new))
    return abs(new - old) / scale if scale > 0 else 0.0


def _run(doc: dict) -> str:
    return (f"profile {doc.get('profile')}, seed {doc.get('seed')}, git {(doc.get('git_sha') or 'unknown')[:12]}, "
            f"created {doc.get('created', '?')}, {len(doc.get('records', []))} records")  # fmt: skip


def compare_docs(old: dict, new: dict, *, threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    """The differences between two decoded (schema-3) documents, record by record."""
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold: expected a finite number >= 0, got {threshold!r}")
    a = {r["id"]: r for r in old["records"]}
    b = {r["id"]: r for r in new["records"]}
    cmp = Comparison(_run(old), _run(new), float(threshold))
    cmp.added = [b[i] for i in b if i not in a]
    cmp.removed = [a[i] for i in a if i not in b]
    for i, rb in b.items():
        ra = a.get(i)
        if ra is None:
            if rb["verdict"] in FAILED:
                cmp.new_failures.append(i)
            continue
        if ra["verdict"] != rb["verdict"]:
            cmp.verdicts.append((i, ra["verdict"], rb["verdict"]))
            if rb["verdict"] in FAILED and ra["verdict"] not in FAILED:
                cmp.new_failures.append(i)
        if ra["expected"] != rb["expected"]:
            cmp.expected.append((i, ra["expected"], rb["expected"]))
        if bool(ra.get("verified")) != bool(rb.get("verified")):
            cmp.verified.append((i, bool(ra.get("verified")), bool(rb.get("verified"))))
        fresh = sorted(set(rb.get("mutants_survived") or {}) - set(ra.get("mutants_survived") or {}))
        if fresh:
            cmp.survivors.append((i, fresh))
        oa, ob = _number(ra.get("observed")), _number(rb.get("observed"))
        if oa is not None and ob is not None and relative_change(oa, ob) > threshold:
            cmp.observed.append((i, oa, ob, relative_change(oa, ob)))
    return cmp


def render_comparison(cmp: Comparison) -> str:
    """The comparison as plain text (Markdown lists), new failures first."""
    out = [f"old: {cmp.old_run}", f"new: {cmp.new_run}", ""]
    if cmp.new_failures:
        out += [f"NEW FAILURES ({len(cmp.new_failures)}): " + ", ".join(cmp.new_failures), ""]
    sections = [
        ("verdict changes", [f"- {i}: {o} -> {n}" for i, o, n in cmp.verdicts]),
        ("expected status changes", [f"- {i}: {o} -> {n}" for i, o, n in cmp.expected]),
        (
            "verified changes",
            [
                f"- {i}: {'verified' if o else 'not verified'} -> {'verified' if n else 'not verified'}"
                for i, o, n in cmp.verified
            ],
        ),  # fmt: skip
        ("mutants that newly survive", [f"- {i}: {', '.join(names)}" for i, names in cmp.survivors]),
        (
            f"observed changes beyond a relative change of {cmp.threshold:g}",
            [f"- {i}: {o:.3g} -> {n:.3g} (relative change {c:.2g})" for i, o, n, c in cmp.observed],
        ),  # fmt: skip
        ("added", [f"- {r['id']} ({r['label']}): {r['verdict']}" for r in cmp.added]),
        ("removed", [f"- {r['id']} ({r['label']}): was {r['verdict']}" for r in cmp.removed]),
    ]
    for title, lines in sections:
        out += [f"{title}: {len(lines) or 'none'}", *lines, ""]
    out.append("exit status 1: a new CONTRADICTS or ERROR" if cmp.exit_status else "no new CONTRADICTS or ERROR")
    return "\n".join(out) + "\n"
