"""The papers stage's fixture: a real local HTTP server standing in for the Daily Papers API."""

from __future__ import annotations

import pytest
from papers_api import PapersApi


@pytest.fixture
def api():
    server = PapersApi().start()
    yield server
    server.stop()
