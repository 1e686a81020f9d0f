r"""Verdicts under full load (issue 9, acceptance): ``altgrad check --quick --json`` idle, then N times while a CPU
burner occupies every core; the verdicts of every loaded run are compared record by record with the idle run.

Spec §0.5 item 7: no verdict may depend on wall-clock time or machine load. A verdict here is the record's
``verdict`` word, whether it counts as ``verified``, and the set of mutants it killed; all three must match the idle
run for every check id. Wall-clock times are reported beside them and decide nothing.

The burner is one ``multiprocessing`` process per core (``os.cpu_count()`` by default), each a busy loop; it is
started before each loaded run and stopped after it. The checks run as ``python -m proofs_check`` with the
interpreter running this script, so ``PYTHONPATH`` may point at a frozen copy of the tree.

    python benchmarks/load_repeat.py --runs 2            # one idle + two loaded quick runs (about 3 x the quick run)
    python benchmarks/load_repeat.py --runs 5 --burners 4

Prints one JSON object per line: a line per run (``kind`` idle/loaded, wall seconds, record count, the differences
with the idle run), then the summary line (``"summary": true``, ``all_same``). Exit status 1 when a loaded run's
verdicts differ from the idle run's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proofs_check.load import Burner  # the one burner (re-exported: tests use load_repeat.Burner)


def verdicts(doc: dict) -> dict[str, dict]:
    """Per check id: the verdict word, ``verified`` and the sorted killed mutants of a report.json document."""
    recs = doc.get("records")
    if not isinstance(recs, list):
        raise ValueError(f"doc: expected a report.json document with a 'records' list, got keys {sorted(doc)}")
    return {
        r["id"]: {"verdict": r["verdict"], "verified": bool(r.get("verified")),
                  "mutants_killed": sorted(r.get("mutants_killed") or [])}
        for r in recs
    }  # fmt: skip


def differences(idle: dict[str, dict], loaded: dict[str, dict]) -> list[dict]:
    """Every check id whose verdict, ``verified`` or killed mutants differ between two :func:`verdicts` maps (an id
    present in one map only is a difference too)."""
    out = []
    for cid in sorted(set(idle) | set(loaded)):
        a, b = idle.get(cid), loaded.get(cid)
        if a != b:
            out.append({"id": cid, "idle": a, "loaded": b})
    return out


def counts(v: dict[str, dict]) -> dict:
    """Tally of a :func:`verdicts` map: records, verdict words, verified."""
    words: dict[str, int] = {}
    for e in v.values():
        words[e["verdict"]] = words.get(e["verdict"], 0) + 1
    return {"records": len(v), "verdicts": words, "verified": sum(e["verified"] for e in v.values())}


def run_quick(seed: int, out: Path) -> tuple[float, int, dict]:
    """One ``python -m proofs_check --quick --json out`` run: (wall seconds, exit status, document)."""
    cmd = [sys.executable, "-m", "proofs_check", "--quick", "--quiet", "--seed", str(seed), "--json", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    if not out.exists():
        raise RuntimeError(f"{' '.join(cmd)} wrote no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc.returncode, json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=2, help="loaded runs after the idle one (default 2)")
    p.add_argument("--burners", type=int, default=os.cpu_count() or 1, help="busy processes (default: one per core)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error(f"--runs: expected at least 1, got {args.runs}")
    with tempfile.TemporaryDirectory(prefix="altgrad-load-") as tmp:
        wall, rc, doc = run_quick(args.seed, Path(tmp) / "idle.json")
        idle = verdicts(doc)
        print(json.dumps({"kind": "idle", "wall_s": round(wall, 1), "exit": rc, **counts(idle)}), flush=True)
        loaded_lines = []
        for k in range(args.runs):
            with Burner(args.burners):
                wall, rc, doc = run_quick(args.seed, Path(tmp) / f"loaded{k}.json")
            v = verdicts(doc)
            diff = differences(idle, v)
            line = {"kind": "loaded", "run": k + 1, "burners": args.burners, "wall_s": round(wall, 1), "exit": rc,
                    **counts(v), "same_as_idle": not diff, "differences": diff}  # fmt: skip
            loaded_lines.append(line)
            print(json.dumps(line), flush=True)
    same = all(line["same_as_idle"] for line in loaded_lines)
    print(json.dumps({"summary": True, "runs": args.runs, "burners": args.burners, "cpu_count": os.cpu_count(),
                      "idle": counts(idle), "all_same": same,
                      "loaded_wall_s": [line["wall_s"] for line in loaded_lines]}), flush=True)  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
