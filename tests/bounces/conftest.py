"""The bounce tests' fixtures: a relay that reports back later (``relay.py``), settings whose mail
goes through it from VERP addresses of the bounce domain, and the bounce listener started as
``digest bounces serve`` starts it (``serve`` in a thread)."""

from __future__ import annotations

import socket
import threading

import pytest
from digest_helpers import with_smtp
from processes import wait_for
from relay import Relay
from support import free_port

from digest.bounces.listener import serve
from digest.config import Settings

BOUNCE_DOMAIN = "bounces.example.org"


@pytest.fixture
def relay(pipelining):
    server = Relay(pipelining=pipelining)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bounce_settings(settings, relay) -> Settings:
    """``settings`` with a bounce domain, whose mail goes to ``relay``."""
    return with_smtp(settings, relay).with_(bounce_domain=BOUNCE_DOMAIN)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def listener(bounce_settings):
    """(host, port) of the bounce listener, run by the function ``digest bounces serve`` runs."""
    host, port, stop = "127.0.0.1", free_port(), threading.Event()
    thread = threading.Thread(target=serve, args=(bounce_settings, host, port, stop), daemon=True)
    thread.start()
    wait_for(lambda: _answers(host, port), 10, "the bounce listener")
    yield host, port
    stop.set()
    thread.join(10)
