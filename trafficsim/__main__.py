"""``python -m trafficsim``: the same as the ``trafficsim`` command."""

import sys

from .cli import main

sys.exit(main())
