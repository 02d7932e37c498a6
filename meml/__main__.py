"""``python -m meml`` is the ``meml`` command."""

import sys

from meml.cli import main

sys.exit(main())
