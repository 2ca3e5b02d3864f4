"""The attention explorer: a web page and JSON API over attnkit checkpoints (the [serve] extra).

``attnkit serve --checkpoint runs/dates --checkpoint runs/rt`` starts it on 127.0.0.1; nothing
else in attnkit imports this package.
"""

from .app import create_app, server
from .models import Served, load_served

__all__ = ["Served", "create_app", "load_served", "server"]
