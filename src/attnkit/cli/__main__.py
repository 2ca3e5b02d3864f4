"""``python -m attnkit.cli`` runs the ``attnkit`` command."""

import sys

from . import main

sys.exit(main())
