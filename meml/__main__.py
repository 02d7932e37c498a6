"""``python -m meml`` is the ``meml`` command."""

import sys

from meml.pipeline.cli import main

sys.exit(main())
