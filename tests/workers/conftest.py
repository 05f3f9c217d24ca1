"""The Celery side's fixtures: a broker of the test's own and a papers API with recent days."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from papers_api import PapersApi, diffusion_papers, ok
from processes import PrivateRedis


@pytest.fixture
def papers_api():
    """The papers API with yesterday's and today's papers (what beat's ingest asks for)."""
    today = datetime.now(timezone.utc).date()
    api = PapersApi()
    for d, day in enumerate((today - timedelta(days=1), today)):
        api.days[day.isoformat()] = [ok(diffusion_papers(day, d))]
    api.start()
    yield api
    api.stop()


@pytest.fixture
def broker(request):
    """A Redis of the test's own when redis-server is installed (nothing else's tasks in its queues,
    no other test run's worker taking ours), else the shared test Redis, emptied."""
    if PrivateRedis.available():
        server = PrivateRedis().start()
        yield server.url
        server.stop()
        return
    import redis

    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()
