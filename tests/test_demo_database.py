"""A database made by `digest demo` records that it is the demo's and the base URL it serves, so
CLI commands run beside it mail links that demo answers, without DIGEST_DEMO or a key."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

from click.testing import CliRunner
from digest_helpers import add_subscriber

from digest import tokens
from digest.cli import main
from digest.config import load_settings
from digest.db import session_scope
from digest.demo import prepare
from digest.mail.transport import outbox_folder
from digest.models import Subscriber
from digest.web import create_app


def test_cli_commands_on_a_demo_database_use_its_base_url_and_key_and_say_so(tmp_path, monkeypatch):
    data = tmp_path / "data"
    env = {"DIGEST_DATA_DIR": str(data)}
    settings = load_settings(env, demo=True).with_(base_url="http://127.0.0.1:8123")
    demo = prepare(settings, sample=True, echo=lambda *_: None)  # what `digest demo --port 8123` does first
    demo.stop()
    with session_scope(settings) as session:
        add_subscriber(session, "reader@example.org", due=datetime.now(UTC) - timedelta(minutes=1))
        public_id = session.query(Subscriber.public_id).scalar()
    for name in [k for k in os.environ if k.startswith("DIGEST_")]:
        monkeypatch.delenv(name)

    result = CliRunner().invoke(main, ["send"], env=env, catch_exceptions=False)  # no DIGEST_DEMO, no DIGEST_SECRET_KEY
    assert result.exit_code == 0, result.output
    assert "demo database (made by `digest demo`): links point at http://127.0.0.1:8123, signed with the demo key" in result.output
    (path,) = outbox_folder(settings).glob("*.eml")
    message = BytesParser(policy=policy.default).parse(path.open("rb"))
    text = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"http://127\.0\.0\.1:8123/unsubscribe/(\S+)", text)
    assert link, text
    assert tokens.read_token(settings, "unsubscribe", link.group(1)) == public_id  # the demo accepts it
    page = create_app(settings).test_client().get(f"/unsubscribe/{link.group(1)}")
    assert page.status_code == 200

    explained = CliRunner().invoke(main, ["explain", "reader@example.org"], env=env, catch_exceptions=False)
    assert explained.exit_code == 0 and "demo database (made by `digest demo`)" in explained.output

    plain = tmp_path / "plain"  # a database the demo did not make: the key is required as before
    result = CliRunner().invoke(main, ["send"], env={"DIGEST_DATA_DIR": str(plain)})
    assert result.exit_code == 2 and "DIGEST_SECRET_KEY" in result.output and "demo database" not in result.output
