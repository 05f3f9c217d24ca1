"""The papers stage's fixtures: a real local HTTP server standing in for the Daily Papers API, and
the saved Daily Papers page the packaged sample is made from."""

from __future__ import annotations

from pathlib import Path

import pytest
from papers_api import PapersApi
from processes import ROOT

SEEDS = ROOT.parent / "shared" / "seeds"  # outside the repository: scripts/make_sample_data.py reads it


@pytest.fixture
def api():
    server = PapersApi().start()
    yield server
    server.stop()


@pytest.fixture
def seeds() -> Path:
    """The folder of the saved Daily Papers page (``*.txt``) the sample was made from; a test that
    checks the sample against it skips where it is absent (a plain clone has no such folder)."""
    if not any(SEEDS.glob("*.txt")):
        pytest.skip(
            f"needs the saved Daily Papers page the sample papers were made from (*.txt in {SEEDS}, "
            "i.e. ../shared/seeds beside this checkout), but there is none there. That page is kept outside the "
            "repository by whoever maintains the sample: the packaged sample works without it; only these checks "
            "of the sample against the page need it"
        )
    return SEEDS
