"""``python -m gridgeo.cli``: the same as the ``gridgeo`` command."""

import sys

from gridgeo.cli.main import main

sys.exit(main())
