"""The tables of :mod:`benchmarks.peers_bench`, rendered from its JSON records (measured values only).

``header``: where a run comes from (command, date, machine, load); ``markdown``: one row per record;
``compact``: README.md's two short tables (the cells; the authors' settings n = 10 * 2^d).
"""

from __future__ import annotations


def _g(x, fmt=".2g"):
    return "" if x is None else (format(x, fmt) if isinstance(x, float) else str(x))


COLUMNS = ("dist", "d", "n", "causal", "method", "eps", "rank", "t (s)", "t fwd", "err s", "err dX", "bound dX",
           "torch64 / t", "torch32 / t", "note")  # fmt: skip


def header(recs) -> str:
    """Where the table comes from: command, date, machine, load (from the config and summary records)."""
    cfg = next(r for r in recs if r["kind"] == "config")
    end = next((r for r in recs if r["kind"] == "summary"), {})
    wall = f"{end['wall_s'] / 60:.0f} minutes" if end else "stopped before its summary record"
    load = f"{cfg['loadavg_1min']:.1f} at the start and {end['loadavg_1min']:.1f} at the end" if end else "n/a"
    return (
        f"Command: `{cfg['command']}` (repository root), {cfg['date']}, {cfg['cpus']} CPUs, one thread, numpy "
        f"{cfg['numpy']}, torch {cfg['torch'] or 'not installed'}, seed {cfg['seed']}; whole run {wall}; "
        f"1-minute load average {load} (a shared machine: timings are noisy, ratios are measured side by side "
        "in one cell). Times in seconds; errors are max abs entry errors against the exact result.\n\n"
    )


def markdown(recs) -> str:
    """One Markdown table of the cell and authors'-setting records (measured values only)."""
    L = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in recs:
        if r["kind"] not in ("cell", "authors_setting"):
            continue
        meth = r["method"] + (f" {r['mode']}" if "mode" in r else "")
        if r.get("method_used") and r.get("method_used") != r.get("mode"):
            meth += f" (used {r['method_used']})"
        notes = ["authors' setting n = 10 * 2^d"] if r["kind"] == "authors_setting" else []
        notes += [r[k] for k in ("skipped", "refused", "same_as") if r.get(k)]
        if r.get("exact") and r["exact"] != "reference.blocked":
            notes.append(f"errors vs {r['exact']}")
        if r.get("within_bound") is False:
            notes.append("OUTSIDE its certified bound")
        note = "; ".join(notes)
        vals = (r["dist"], r["d"], r["n"], "yes" if r["causal"] else "no", meth, _g(r.get("eps"), ".0e"),
                _g(r.get("rank")), _g(r.get("t"), ".3g"), _g(r.get("t_fwd"), ".3g"), _g(r.get("err_s")),
                _g(r.get("err_dX")), _g(r.get("bound_dX")), _g(r.get("x_torch64"), ".3g"),
                _g(r.get("x_torch32"), ".3g"), note.replace("|", "/"))  # fmt: skip
        L.append("| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(L) + "\n"


def _pick(rows, method, **kw):
    return next((r for r in rows if r["method"] == method and all(r.get(k) == v for k, v in kw.items())), {})


def _alt(rows, eps):
    """The altgrad row a user gets at this eps: auto (and the forced lowrank row beside it where auto went exact)."""
    a, lr = _pick(rows, "altgrad", eps=eps, mode="auto"), _pick(rows, "altgrad", eps=eps, mode="lowrank")
    if "t" in a:
        s = f"{a['t']:.3g} s, {_g(a.get('x_torch64'), '.2g')}x, {a['method_used']} r={a['rank']}"
    else:
        s = "auto: " + (a.get("refused") or a.get("skipped") or "n/a")[:48]
    if "t" in lr:
        s += f" (lowrank r={lr['rank']}: {lr['t']:.3g} s, {_g(lr.get('x_torch64'), '.2g')}x)"
    elif lr.get("refused"):
        s += " (lowrank refused)"
    return s


def compact(recs) -> str:
    """The README's two short tables, from the same records: the cells, and the authors' settings."""
    cells: dict = {}
    for r in recs:
        if r["kind"] in ("cell", "authors_setting"):
            cells.setdefault((r["kind"], r["dist"], r["d"], r["n"], r["causal"]), []).append(r)
    L = ["| inputs | d | n | causal | torch f64 (s) | torch f32 (s) | altgrad eps 1e-8: time, x torch f64, "
         "method, rank | altgrad eps 1e-6 | err dX: altgrad 1e-8 / torch f32 / FAVOR+ / degree 2 |",
         "|" + "---|" * 9]  # fmt: skip
    for (kind, dist, d, n, causal), rows in cells.items():
        if kind != "cell":
            continue
        errs = " / ".join(_g(_pick(rows, m, **kw).get("err_dX")) or "-" for m, kw in
                          (("altgrad", dict(eps=1e-8, mode="auto")), ("torch-f32", {}), ("favor+", {}),
                           ("degree2", {})))  # fmt: skip
        L.append(f"| {dist} | {d} | {n} | {'yes' if causal else 'no'} | {_g(_pick(rows, 'torch-f64').get('t'), '.3g')} "
                 f"| {_g(_pick(rows, 'torch-f32').get('t'), '.3g')} | {_alt(rows, 1e-8)} | {_alt(rows, 1e-6)} "
                 f"| {errs} |")  # fmt: skip
    if len(L) == 2:
        L = []  # no cells in these records: only the settings table
    S = ["| inputs | d | n = 10 * 2^d | degree 2 forward (s), err s | altgrad forward eps 1e-4: (s), err s, "
          "method | altgrad eps 1e-6 fwd+bwd | torch f64 fwd+bwd (s) |", "|" + "---|" * 7]  # fmt: skip
    n_head = len(S)
    for (kind, dist, d, n, _c), rows in cells.items():
        if kind != "authors_setting":
            continue
        d2, a4 = _pick(rows, "degree2"), _pick(rows, "altgrad", eps=1e-4, mode="auto")
        fwd = (f"{a4['t_fwd']:.3g}, {a4['err_s']:.2g}, {a4['method_used']} r={a4['rank']}" if "t" in a4
               else a4.get("refused", a4.get("skipped", "n/a"))[:40])  # fmt: skip
        S.append(f"| {dist} | {d} | {n} | {_g(d2.get('t_fwd'), '.3g')}, {_g(d2.get('err_s'))} | {fwd} "
                 f"| {_alt(rows, 1e-6)} | {_g(_pick(rows, 'torch-f64').get('t'), '.3g')} |")  # fmt: skip
    if len(S) > n_head:
        L += ([""] if L else []) + S
    return "\n".join(L) + "\n"
