r"""The ``report.json`` document: its schema, the one status vocabulary, building, validating and upgrading it.

Schema of ``report.json`` (``schema`` = :data:`SCHEMA_VERSION`)::

    schema      int       this file's schema version (3; a schema-2 file is upgraded on reading, see upgrade_doc)
    paper       str       "arXiv:2408.13233v2"
    git_sha     str|null  HEAD of the working tree that ran (null outside git); git_dirty: bool|null
    versions    dict      altgrad, numpy, sympy, mpmath, python (str each)
    profile     str       "quick" | "full"
    seed        int       the seed every check drew its random streams from (Context.rng(salt)); any int >= 0
    created     str       UTC time of the run (ISO 8601)
    runner      dict      {"kind": "serial" | "processes" | "dask", "jobs": int, "scheduler": str|null}
    wall_s      float     wall time of the whole run
    coverage    dict      {"covered": [int], "missing": [int]}: SPEC §3 catalogue numbers 1..100 named by some check
    complete    bool      false when the run was interrupted (the records are those that finished)
    records     list      one dict per check (below)

A record: ``id``, ``label``, ``name`` (the one-line statement), ``kind``, ``expected``, ``spec``, ``uses``,
``verdict``, ``figure``, ``data``, ``seed``, ``profile``, ``wall_s``, ``command``, and the one result schema of
issue 9: ``observed``, ``bound``, ``ratio`` (observed / bound; numbers or null), ``precision`` (what decided, or
null), ``counterexample`` (dict or null), ``inherits`` (SPEC §3 numbers of errors received from earlier
statements), ``illustration`` (bool: shown, never counted as verified), ``mutants`` (declared wrong variants),
``mutants_killed`` (list), ``mutants_survived`` ({name: why}) and ``verified`` (bool, Record.verified).

**One vocabulary.** ``verdict`` and ``expected`` use the same words (:data:`VERDICTS`): ``expected`` is the verdict
a check shows when it agrees with its SPEC §3 status (OK -> ``holds``, or ``trend`` for an [ASYM] statement;
WRONG-AS-PRINTED -> ``wrong as printed``; GAP -> ``gap``; AMBIG -> ``ambiguous``), so a record agrees exactly when
``verdict == expected``. ``CONTRADICTS`` and ``ERROR`` are the two verdicts of a record that does not.

A record's ``data`` is free-form JSON. Two keys are rendered specially: ``counterexample`` (shown in the errata
section when the record has no top-level one) and ``series`` = ``{name: {"x": [...], "y": [...], "xlabel": str,
"ylabel": str, "logx": bool, "logy": bool}}`` (rendered as a table, and as ``plots/<id>.png`` with matplotlib).
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from proofs_check import registry as reg

SCHEMA_VERSION = 3
PAPER = "arXiv:2408.13233v2"
CATALOGUE = range(1, 101)
CONTRADICTS, ERROR = reg.CONTRADICTS, reg.ERROR


def expected_word(kind: str, status: str) -> str:
    """The verdict word of a check of ``kind`` that agrees with its SPEC §3 ``status`` (OK/WRONG-AS-PRINTED/GAP/AMBIG).

    The mapping itself is the registry's (:func:`proofs_check.registry.expected_word`); a word (a schema-2 or -3
    document's ``expected``) is returned unchanged, and so is a status with an unknown kind.
    """
    if status not in reg.STATUSES:
        return status
    return reg.expected_word(status, kind if kind in reg.KINDS else None)


def _agree_words() -> tuple[str, ...]:
    words: list[str] = []
    for status in reg.STATUSES:
        for kind in reg.KINDS:
            w = expected_word(kind, status)
            if w not in words:
                words.append(w)
    return tuple(words)


AGREE = _agree_words()  # ("holds", "trend", "wrong as printed", "gap", "ambiguous")
VERDICTS = (*AGREE, CONTRADICTS, ERROR)

RECORD_KEYS: dict[str, Any] = {
    "id": str, "label": str, "name": str, "kind": str, "expected": str, "spec": list, "uses": list,
    "verdict": str, "figure": str, "data": dict, "seed": int, "profile": str, "wall_s": (int, float), "command": str,
    "observed": (int, float, str, type(None)), "bound": (int, float, str, type(None)),
    "ratio": (int, float, str, type(None)), "precision": (str, type(None)), "counterexample": (dict, type(None)),
    "inherits": list, "illustration": bool, "mutants": list, "mutants_killed": list, "mutants_survived": dict,
    "verified": bool,
}  # fmt: skip
DOC_KEYS: dict[str, Any] = {
    "schema": int, "paper": str, "versions": dict, "profile": str, "seed": int, "records": list, "coverage": dict,
    "complete": bool,
}  # fmt: skip


def jsonable(x: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays, mpmath numbers, tuples, sets; non-finite floats as strings."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, str) or x is None:
        return x
    try:
        f = float(x)  # float, numpy floats, mpmath.mpf
    except (TypeError, ValueError):
        return str(x)
    return f if math.isfinite(f) else str(f)


def _git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None, None
        st = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip(), bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def altgrad_version() -> str:
    """The installed altgrad version, or the source tree's note."""
    from importlib import metadata

    try:
        return metadata.version("altgrad")
    except metadata.PackageNotFoundError:
        return "not installed (source tree)"


def versions() -> dict[str, str]:
    """Versions of altgrad, numpy, sympy, mpmath and python."""
    import mpmath
    import sympy

    return {"altgrad": altgrad_version(), "numpy": np.__version__, "sympy": sympy.__version__,
            "mpmath": mpmath.__version__, "python": platform.python_version()}  # fmt: skip


def coverage(spec_lists) -> dict[str, list[int]]:
    """Which SPEC §3 catalogue numbers (1..100) some check names in its ``spec``; the others are ``missing``."""
    covered = sorted({int(s) for spec in spec_lists for s in spec if int(s) in CATALOGUE})
    return {"covered": covered, "missing": [k for k in CATALOGUE if k not in set(covered)]}


def record_dict(rec: reg.Record) -> dict:
    """One record of the document: the Record's fields in JSON, ``expected`` as its verdict word, ``verified``."""
    d = jsonable(asdict(rec))
    d["expected"] = expected_word(rec.kind, rec.expected)
    d["verified"] = bool(rec.verified)
    return d


def build_doc(records, *, profile: str, seed: int, wall_s: float, runner: dict | None = None,
              catalogue_specs=None, complete: bool = True) -> dict:  # fmt: skip
    """The ``report.json`` document for a list of :class:`proofs_check.registry.Record`.

    ``catalogue_specs``: the ``spec`` tuples of the whole registry (coverage is that of the registry, not of the
    selection); defaults to the records' own. ``complete``: False for an interrupted run.
    """
    recs = [record_dict(r) for r in records]
    sha, dirty = _git_state()
    specs = catalogue_specs if catalogue_specs is not None else [r["spec"] for r in recs]
    return {
        "schema": SCHEMA_VERSION,
        "paper": PAPER,
        "git_sha": sha,
        "git_dirty": dirty,
        "versions": versions(),
        "profile": profile,
        "seed": int(seed),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runner": runner or {"kind": "serial", "jobs": 1, "scheduler": None},
        "wall_s": round(float(wall_s), 3),
        "coverage": coverage(specs),
        "complete": bool(complete),
        "records": recs,
    }


_SCHEMA3_DEFAULTS = {"observed": None, "bound": None, "ratio": None, "precision": None, "counterexample": None,
                     "inherits": [], "illustration": False, "mutants": [], "mutants_killed": [],
                     "mutants_survived": {}, "verified": False}  # fmt: skip


def upgrade_doc(doc: dict) -> dict:
    """A schema-2 document (expected as SPEC codes, no result schema) as a schema-3 one; others unchanged.

    The new record fields get their empty values (nothing was measured for them, and no check counted as verified).
    """
    if not isinstance(doc, dict) or doc.get("schema") != 2:
        return doc
    out = {**doc, "schema": SCHEMA_VERSION, "complete": doc.get("complete", True)}
    recs = []
    for r in doc.get("records", []) if isinstance(doc.get("records"), list) else []:
        r = {**_SCHEMA3_DEFAULTS, **r} if isinstance(r, dict) else r
        if isinstance(r, dict) and isinstance(r.get("expected"), str):
            r["expected"] = expected_word(str(r.get("kind", "")), r["expected"])
        recs.append(r)
    out["records"] = recs
    return out


def validate_doc(doc: dict) -> list[str]:
    """Schema problems of a decoded ``report.json`` (empty when it is well formed)."""
    if not isinstance(doc, dict):
        return [f"document: expected a JSON object, got {type(doc).__name__}"]
    errs = []
    if doc.get("schema") != SCHEMA_VERSION:
        errs.append(f"document: schema {doc.get('schema')!r}, expected {SCHEMA_VERSION}")
    for k, t in DOC_KEYS.items():
        if not isinstance(doc.get(k), t):
            errs.append(f"document: {k!r} missing or not {t}")
    for i, r in enumerate(doc.get("records", []) if isinstance(doc.get("records"), list) else []):
        if not isinstance(r, dict):
            errs.append(f"records[{i}]: expected an object")
            continue
        for k, t in RECORD_KEYS.items():
            v, allowed = r.get(k, ...), t if isinstance(t, tuple) else (t,)
            if v is ... or not isinstance(v, allowed) or (isinstance(v, bool) and bool not in allowed):
                errs.append(f"records[{i}] ({r.get('id', '?')}): {k!r} missing or not {t}")
        if r.get("verdict") not in VERDICTS:
            errs.append(f"records[{i}] ({r.get('id', '?')}): verdict {r.get('verdict')!r} not one of {VERDICTS}")
        if r.get("expected") not in AGREE:
            errs.append(f"records[{i}] ({r.get('id', '?')}): expected {r.get('expected')!r} not one of {AGREE}")
    return errs


def agrees(rec: dict) -> bool:
    """A record of the document agrees with its expected status."""
    return rec["verdict"] not in (CONTRADICTS, ERROR)
