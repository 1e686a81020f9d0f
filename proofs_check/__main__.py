"""``python -m proofs_check [ARGS]`` runs ``altgrad check [ARGS]``."""

import sys

from proofs_check.cli import main

raise SystemExit(main(["check", *sys.argv[1:]]))
