"""What ``altgrad check`` prints: a summary table that fits the terminal, a progress line with a running tally of
verdicts (stderr, only on a terminal), and the closing lines.

Widths come from :func:`shutil.get_terminal_size` (``COLUMNS`` first, then the terminal; 120 when output goes to
a pipe or a file). Only the ``observed`` column is ever cut; the full text is in ``--report`` / ``--json``.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections import Counter

from proofs_check.report_doc import VERDICTS, expected_word

FALLBACK_COLUMNS = 120  # output to a pipe or a file, and no COLUMNS: wide enough for most rows, never unbounded
MIN_OBSERVED = 24  # narrower than this, the observed text goes on a line of its own under its row


def terminal_width() -> int:
    return max(40, shutil.get_terminal_size((FALLBACK_COLUMNS, 24)).columns)


def cut(text: str, width: int, *, squash: bool = True) -> str:
    """``text`` on one line (runs of white space squashed), at most ``width`` characters (an ellipsis marks a cut)."""
    text = " ".join(str(text).split()) if squash else str(text)
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def fit_table(header: list[str], rows: list[list[str]], width: int) -> tuple[list[str], bool]:
    """Lines of a table whose **last** column is cut to fit ``width``; (lines, whether anything was cut).

    The other columns keep their natural widths. When fewer than :data:`MIN_OBSERVED` characters remain for the
    last column, it moves to an indented line under its row.
    """
    fixed = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    prefix = sum(fixed) + 2 * len(fixed)
    room = width - prefix
    inline = room >= MIN_OBSERVED
    cutting = False
    out = []
    for k, r in enumerate([header, *rows]):
        head = "  ".join(c.ljust(w) for c, w in zip(r[:-1], fixed, strict=True))
        last = " ".join(str(r[-1]).split())
        if inline:
            cutting |= len(last) > room
            out.append(cut(f"{head}  {cut(last, room)}".rstrip(), width, squash=False))
        else:
            out.append(cut(head.rstrip(), width, squash=False))
            if last and k > 0:
                cutting |= len(last) > width - 4
                out.append("    " + cut(last, width - 4))
    return out, cutting


def summary_rows(records) -> tuple[list[str], list[list[str]]]:
    header = ["label", "kind", "expected", "verdict", "id", "observed"]
    rows = [[r.label, r.kind, expected_word(r.kind, r.expected), r.verdict, r.id, r.figure] for r in records]
    return header, rows


def wrap(text: str, width: int) -> str:
    return textwrap.fill(text, width=width, break_on_hyphens=False, subsequent_indent="  ")


def closing_lines(records, *, wall: float, seed: int, asked_for_output: bool, cut_any: bool, width: int) -> list[str]:
    """The totals, the falsifiability counts (issue 9), and a hint naming ``--report`` when nothing was saved."""
    bad = [r for r in records if r.contradicts]
    verified = sum(r.verified for r in records)
    illus = sum(r.illustration for r in records)
    no_mutants = sum(not r.illustration and not r.mutants for r in records)
    survivors = [f"{r.id}:{m}" for r in records for m in r.mutants_survived]
    out = [
        f"{len(records)} checks: {len(records) - len(bad)} agree with their expected status, {len(bad)} contradict "
        f"or fail ({wall:.1f} s, seed {seed})",
        f"verified (agrees and kills every declared mutant): {verified}; illustrations (never counted): {illus}; "
        f"checks without mutants yet: {no_mutants}",
    ]
    if survivors:
        out.append(f"mutants that survived ({len(survivors)}): {', '.join(survivors)}")
    if not asked_for_output:
        keep = "keep the full results with --report DIR (report.md, report.json, graph.dot) or --json FILE"
        out.append(("observed values were cut to the terminal width; " if cut_any else "") + keep)
    elif cut_any:
        out.append("observed values were cut to the terminal width; the report / JSON file has them in full")
    return [wrap(x, width) for x in out]


_LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+): (.+) \(([\d.]+) s\)$")


class Progress:
    """One status line on a terminal: ``[k/total] holds 12 · gap 3 · ... | running <id>``, redrawn in place.

    Silent when ``enabled`` is False (``--quiet``, or stderr is no terminal). Also a text stream for
    :func:`proofs_check.registry.run_many`: the lines ``[k/total] id: verdict (t s)`` of the parallel runners are
    read back into the tally.
    """

    def __init__(self, total: int, stream, *, enabled: bool, width: int | None = None):
        self.total, self.stream, self.enabled = total, stream, enabled
        self.width = width or terminal_width()
        self.tally: Counter[str] = Counter()
        self.done = 0
        self._buf = ""

    def _draw(self, running: str = "") -> None:
        if not self.enabled:
            return
        tally = " · ".join(f"{v} {self.tally[v]}" for v in VERDICTS if self.tally[v])
        text = f"[{self.done}/{self.total}] {tally or 'no verdict yet'}" + (f" | {running}" if running else "")
        self.stream.write("\r" + cut(text, self.width - 1) + "\x1b[K")
        self.stream.flush()

    def start(self, cid: str) -> None:
        self._draw(f"running {cid}")

    def record(self, verdict: str) -> None:
        self.done += 1
        self.tally[verdict] += 1
        self._draw()

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    # a text stream for run_many's progress lines
    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            m = _LINE.match(line.strip())
            if m:
                self.record(m.group(4))
        return len(text)

    def flush(self) -> None:
        pass
