"""Every byte on the wire: digests and the confirmation mail, sent by the real send paths to a raw
SMTP server that keeps what it receives, end in CRLF everywhere (RFC 5322 forbids a bare LF or
CR; since the SMTP-smuggling fixes strict servers refuse them or rewrite the message).
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from digest_helpers import AT, add_subscriber
from support import RawSmtpServer
from web_helpers import subscribe

from digest.config import SmtpSettings
from digest.delivery.run import send_due
from digest.web import create_app

LONG_NAME = "Ежедневный дайджест трендовых статей по машинному обучению и смежным областям"
TITLES = {
    "cyr": "Масштабируемая диффузия видео: обучение, оценка и генерация длинных роликов высокого разрешения",
    "cjk": "大规模视频扩散模型的训练与评估：从短片到长视频的高分辨率生成方法研究与实践总结",
    "greek": "Ἀγεντικά συστήματα 🤖 για την επιστήμη — πολυτροπικά μοντέλα με «εργαλεία», μνήμη και σχεδιασμό",
    "latin": "A long title about reasoning in large language models that goes on and on, with one café in "
    "the middle of it and then many more plain words, well past the folding limit of a header line",
    "lines": "Zwei Zeilen:\nÜberschrift mit Zeilenumbruch\r\nund Tabulator\tmitten drin, lang genug zum Falten",
}


@pytest.fixture(params=[True, False], ids=["PIPELINING", "one command at a time"])
def raw_smtp(request):
    server = RawSmtpServer(pipelining=request.param).start()
    yield server
    server.stop()


@pytest.fixture
def wire_settings(settings, raw_smtp):
    return settings.with_(
        smtp=SmtpSettings(host=raw_smtp.host, port=raw_smtp.port, timeout=10),
        mail_from=f"{LONG_NAME} <digest@example.org>",
    )


def assert_crlf_only(data: bytes) -> list[bytes]:
    """No bare LF or CR anywhere; returns the header block's lines (each ended by CRLF)."""
    assert b"\r\n\r\n" in data, "no end of the header block"
    bare_lf = len(re.findall(rb"(?<!\r)\n", data))
    bare_cr = len(re.findall(rb"\r(?!\n)", data))
    assert (bare_lf, bare_cr) == (0, 0), f"{bare_lf} bare LF, {bare_cr} bare CR in:\n{data[:2000]!r}"
    head = data[: data.index(b"\r\n\r\n") + 2]
    lines = head.split(b"\r\n")[:-1]
    for line in lines:
        assert b"\n" not in line and b"\r" not in line
        assert len(line) <= 998, f"header line of {len(line)} bytes"
    return lines


def test_digests_with_long_non_ascii_titles_and_sender_go_out_with_crlf_line_ends_only(session, make_paper, wire_settings, raw_smtp):
    for rank, (org, title) in enumerate(TITLES.items()):
        make_paper(title=title, org_name=org, upvotes=100 - rank, session=session)
        add_subscriber(session, f"{org}@example.org", [f"org:{org}"])
    add_subscriber(session, "everything@example.org")
    session.commit()

    report = send_due(wire_settings, AT, retry_delays=())

    assert report.sent == len(TITLES) + 1 and len(raw_smtp.messages) == len(TITLES) + 1
    folded = 0
    for raw in raw_smtp.messages:
        lines = assert_crlf_only(raw.data)
        folded += sum(1 for line in lines if line[:1] in (b" ", b"\t"))
        message = email.message_from_bytes(raw.data, policy=email.policy.default)
        org = raw.rcpt_tos[0].decode().strip("<>").split("@")[0]
        count, top = (1, TITLES[org]) if org in TITLES else (len(TITLES), TITLES["cyr"])
        assert message["Subject"] == f"{count} trending paper{'s' if count > 1 else ''}: " + " ".join(top.split())
        assert message["From"].addresses[0].display_name == LONG_NAME
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and message["List-Id"]
    assert folded >= len(TITLES), "the long subjects were expected to be folded over several lines"
    assert re.findall(rb"(?<!\r)\n", bytes(raw_smtp.received)) == []  # the commands too


def test_the_confirmation_mail_goes_out_with_crlf_line_ends_only(wire_settings, raw_smtp):
    client = create_app(wire_settings).test_client()
    response = subscribe(client, "new.reader@example.org", "диффузия видео\nagents")
    assert response.status_code == 303
    (raw,) = raw_smtp.messages
    assert raw.rcpt_tos == [b"<new.reader@example.org>"]
    assert_crlf_only(raw.data)
    assert re.findall(rb"(?<!\r)\n", bytes(raw_smtp.received)) == []
    message = email.message_from_bytes(raw.data, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == LONG_NAME
    assert "/confirm/" in message.get_body(("plain",)).get_content()
