"""``python -m stommel ...`` is the same as the ``stommel`` command."""

import sys

from stommel.cli import main

sys.exit(main())
