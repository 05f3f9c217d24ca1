"""Where the folders shipped beside the package are: ``alembic/``, ``alembic.ini``, ``email_templates/``.

They stay top-level folders of the project; a wheel carries them inside the package as
``digest/_resources/<name>`` (``pyproject.toml``), so an installed ``digest`` finds its migrations
and templates whether it runs from a checkout or from site-packages.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    bundled = PACKAGE / "_resources" / name
    return bundled if bundled.exists() else PACKAGE.parent / name
