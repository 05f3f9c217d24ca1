"""The web app's fixtures: the real app from ``create_app`` (CSRF on) over ``mail_settings``."""

from __future__ import annotations

import pytest

from digest.web import create_app


@pytest.fixture
def app(mail_settings):
    return create_app(mail_settings)


@pytest.fixture
def client(app):
    return app.test_client()
