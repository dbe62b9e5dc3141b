"""`python -m ptstub`: the same as the `ptstub` command."""

import sys

from ptstub.cli import main

sys.exit(main())
