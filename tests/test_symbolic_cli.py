"""`altgrad derive` (spec §2.2–2.9): listing, proving, and clear errors for bad TERM or sizes."""

import pytest

from symbolic.cli import main


def test_list_names_every_statement(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("D8", "dX", "dW_V", "G_i", "mh.dX", "residual.layer", "unit_loss", "printed.gw"):
        assert name in out


@pytest.mark.paper("Lemma D.17")
def test_prove_prints_proved_and_exits_zero(capsys):
    assert main(["D4", "--n", "2", "--d", "1", "--prove", "--latex"]) == 0
    out = capsys.readouterr().out
    assert "PROVED" in out and r"\odot" in out


def test_unknown_term_lists_the_valid_choices(capsys):
    assert main(["D5"]) == 2
    err = capsys.readouterr().err
    assert "TERM: expected one of" in err and "D8" in err and "'D5'" in err


@pytest.mark.parametrize(("args", "needle"), [(["dX", "--n", "0"], "n: expected"),
                                              (["dX", "--d", "9"], "d: expected"),
                                              (["mh.dX", "--d", "3"], "heads: expected a divisor")])  # fmt: skip
def test_bad_sizes_exit_two_with_the_valid_range(capsys, args, needle):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "proved sizes" in err


@pytest.mark.paper("Lemma G.3")
def test_printed_term_shows_its_counterexample(capsys):
    assert main(["printed.dW_V", "--pretty"]) == 0
    assert "printed fails: True" in capsys.readouterr().out
