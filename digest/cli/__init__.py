"""The ``digest`` command line: a few lines per command over the library functions.

Each command imports what it uses when it runs, so ``digest --help`` and a one-line error stay
quick (the web app, Celery and premailer together take a second to import). One module per group
of commands; importing it registers them on ``main`` (``digest.cli.base``).
"""

from digest.cli import admin, mail, papers, schema, service, subscribers  # noqa: F401  (registers the commands)
from digest.cli.base import main

__all__ = ["main"]
