"""``python -m proofs_check [ARGS]`` runs ``altgrad check [ARGS]``; ``python -m proofs_check derive ...`` and any
other ``altgrad`` subcommand given first are passed through unchanged."""

import sys

from proofs_check.cli import main

argv = sys.argv[1:]
SUBCOMMANDS = ("check", "derive", "report", "docs")
raise SystemExit(main(argv if argv and argv[0] in SUBCOMMANDS else ["check", *argv]))
