"""``python -m vizcore.precompute``: see ``vizcore.precompute.cli``."""

import sys

from vizcore.precompute.cli import main

main(sys.argv[1:])
