"""``python -m attnkit`` runs the ``attnkit`` command."""

import sys

from .cli import main

sys.exit(main())
