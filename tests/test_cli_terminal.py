"""Issue 15: ``altgrad check`` in a terminal: the summary fits the width, a progress line keeps a running tally on
stderr (only on a terminal, never with --quiet), the closing lines name --report, and --version answers."""

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from proofs_check import registry as reg
from proofs_check.cli import main
from proofs_check.cli_output import Progress, fit_table

ROOT = Path(__file__).resolve().parent.parent
# checks with long observed texts (the widest rows of the quick profile) and quick ones
SOME = ["sym.G3.dWV", "cat.G2.ds_dWV", "ref.def1.1.softmax", "cat.C2.hadamard_lowrank"]


def _run_in_terminal(args: list[str], columns: int) -> tuple[int, str, str]:
    """Run ``python -m proofs_check ARGS`` with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.run([sys.executable, "-m", "proofs_check", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=slave, timeout=300)  # fmt: skip
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, proc.stdout.decode(), b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not hasattr(pty, "openpty") or sys.platform == "win32", reason="needs a pseudo-terminal")
def test_issue_15_in_a_100_column_terminal_every_line_fits_with_a_tally_and_a_hint():
    rc, out, err = _run_in_terminal(["--only", *SOME], columns=100)
    assert rc == 0, out + err
    lines = out.splitlines()
    assert lines and max(len(ln) for ln in lines) <= 100, max(lines, key=len)
    flat = " ".join(out.split())  # the closing lines wrap at the width
    assert "--report DIR" in flat  # the closing hint
    assert "verified (agrees and kills every declared mutant):" in flat and "checks without mutants yet:" in flat
    # the progress line is redrawn in place on the terminal and ends with the whole tally
    draws = [d for d in err.replace("\x1b[K", "").split("\r") if d.strip()]
    assert any(d.startswith("[1/4] ") for d in draws) and any(d.startswith("[4/4] ") for d in draws), err
    final = [d for d in draws if d.startswith("[4/4] ")][-1]
    assert "holds" in final and "wrong as printed 1" in final
    assert all(len(d.rstrip("\n")) < 100 for d in draws)


def test_quiet_silences_the_progress_line_even_on_a_terminal():
    rc, out, err = _run_in_terminal(["--only", "cat.C2.hadamard_lowrank", "--quiet"], columns=100)
    assert rc == 0 and "[1/1]" not in err


def test_no_progress_line_when_stderr_is_not_a_terminal(capsys):
    assert main(["check", "--only", "cat.C2.hadamard_lowrank"]) == 0
    assert "[1/1]" not in capsys.readouterr().err


def test_the_hint_is_left_out_when_a_report_is_asked_for(tmp_path, capsys):
    assert main(["check", "--only", "cat.C2.hadamard_lowrank", "--json", str(tmp_path / "r.json")]) == 0
    assert "--report DIR" not in capsys.readouterr().out


def test_version_names_the_package_and_the_paper(capsys):
    for argv in (["--version"], ["check", "--version"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("altgrad ") and "arXiv:2408.13233v2" in out


def test_the_table_cuts_only_the_last_column_and_moves_it_under_the_row_when_narrow():
    header = ["label", "verdict", "observed"]
    rows = [["Lemma D.17", "holds", "x" * 200], ["Fact C.2", "gap", "short"]]
    lines, cut_any = fit_table(header, rows, 60)
    assert cut_any and all(len(ln) <= 60 for ln in lines) and lines[1].endswith("…")
    assert lines[2].startswith("Fact C.2    gap") and lines[2].endswith("short")
    narrow, _ = fit_table(header, rows, 30)  # 20 characters left: observed goes on its own line
    assert narrow[1].rstrip() == "Lemma D.17  holds" and narrow[2].startswith("    xxx") and len(narrow[2]) == 30


def test_the_progress_line_reads_the_parallel_runners_lines_into_its_tally():
    class Sink:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    sink = Sink()
    p = Progress(3, sink, enabled=True, width=80)
    p.write("[1/3] a.b: holds (0.1 s)\n[2/3] c.d: wrong as printed (2.0 s)\n[3/3] e")
    assert p.tally == {"holds": 1, "wrong as printed": 1} and p.done == 2
    assert "[2/3] holds 1 · wrong as printed 1" in sink.text


def test_every_verdict_word_of_the_registry_is_in_the_one_vocabulary():
    from proofs_check import report as rep

    for chk in reg.load_all().values():
        assert reg.verdict_for(chk, True) == rep.expected_word(chk.kind, chk.expected) in rep.AGREE
