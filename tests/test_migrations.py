"""Migrations create the schema from empty, match the models, and are safe to run again."""

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from support import subprocess_env

from digest.db import current_revision, engine_for, upgrade
from digest.models import Base


def test_upgrade_from_empty_creates_every_table_and_matches_the_models(database_url):
    engine = engine_for(database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_twice_is_harmless(database_url):
    upgrade(database_url)
    upgrade(database_url)
    assert current_revision(database_url) is not None


def test_cli_db_upgrade_on_a_fresh_sqlite_file(settings, tmp_path):
    url = f"sqlite:///{tmp_path}/fresh/new.sqlite3"
    env = subprocess_env(settings, DIGEST_DATABASE_URL=url)
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "digest", "db", "upgrade"], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "database at revision" in result.stdout
    assert "papers" in inspect(engine_for(url)).get_table_names()
