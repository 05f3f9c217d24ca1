"""The SMTP transport: its shortcuts give exactly what smtplib would, and a stream of messages
reports each one's outcome, with and without PIPELINING."""

import smtplib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import SmtpServer, free_port

from digest.config import SmtpSettings
from digest.mail.pipelining import PLAIN_ADDRESS, quoteaddr
from digest.mail.transport import PermanentError, SmtpTransport, TransientError, connection_trouble

_ATOM = st.text(alphabet="abcXYZ019_+-", min_size=1, max_size=6)
_LABEL = st.text(alphabet="abcXYZ019-", min_size=1, max_size=6)
PLAIN = st.builds(
    lambda local, domain: ".".join(local) + "@" + ".".join(domain),
    st.lists(_ATOM, min_size=1, max_size=3),
    st.lists(_LABEL, min_size=1, max_size=3),
)


@given(PLAIN)
def test_plain_addresses_take_the_shortcut_and_quote_as_smtplib_does(address):
    assert PLAIN_ADDRESS.fullmatch(address)
    assert quoteaddr(address) == smtplib.quoteaddr(address) == f"<{address}>"


@given(st.text(max_size=30))
def test_any_other_string_quotes_as_smtplib_does(text):
    assert quoteaddr(text) == smtplib.quoteaddr(text)


def test_addresses_needing_the_parser_do_not_take_the_shortcut():
    for address in ('"a b"@example.org', "Ann <ann@example.org>", "a..b@example.org", "ann@example.org (Ann)", "<ann@example.org>"):
        assert not PLAIN_ADDRESS.fullmatch(address)
        assert quoteaddr(address) == smtplib.quoteaddr(address)


# ---------------------------------------------------------------- a stream of messages


def _message(subject: str, body: str = "body") -> bytes:
    return f"Subject: {subject}\r\n\r\n{body}\r\n".encode()


@pytest.fixture(params=[False, True], ids=["one command at a time", "PIPELINING"])
def pipelining(request) -> bool:
    return request.param


def test_send_each_reports_every_outcome_in_order_and_a_refusal_does_not_stop_the_rest(smtp_server):
    smtp_server.fail_rcpt["b@example.org"] = "550 5.1.1 No such user"
    messages = [
        (["a@example.org"], _message("a")),
        (["b@example.org"], _message("b")),
        (["c@example.org"], _message("c")),
        (["d@example.org"], _message("d", ".a line starting with a dot\r\n..and two\r\n.")),
    ]
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        smtp_server.fail_next.append("451 4.3.0 Try again later")  # the first DATA: a's
        outcomes = list(transport.send_each("digest@example.org", messages))
        assert transport.connections_opened == 1
    kinds = [(i, type(error).__name__ if error else None) for i, error in outcomes]
    assert kinds == [(0, "TransientError"), (1, "PermanentError"), (2, None), (3, None)]
    assert isinstance(outcomes[0][1], TransientError) and isinstance(outcomes[1][1], PermanentError)
    assert [c.rcpt_tos for c in smtp_server.captured] == [["c@example.org"], ["d@example.org"]]
    assert smtp_server.messages[1].get_payload() == ".a line starting with a dot\r\n..and two\r\n.\r\n"  # dot-stuffed on the wire


def test_send_each_gives_each_message_its_own_envelope_sender_over_one_connection(smtp_server):
    """Each digest goes out from its own VERP address (digest.mail.verp): one sender per message,
    pipelined as before, and a refusal in between changes no other message's sender."""
    smtp_server.fail_rcpt["b@example.org"] = "550 5.1.1 No such user"
    senders = [f"bounces+{x}@bounces.example.org" for x in "abcd"]
    messages = [([f"{x}@example.org"], _message(x)) for x in "abcd"]
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        outcomes = list(transport.send_each(senders, messages))
        assert transport.connections_opened == 1
        with pytest.raises(ValueError, match="3 envelope senders for 4 messages"):
            list(transport.send_each(senders[:3], messages))
    assert [(i, type(e).__name__ if e else None) for i, e in outcomes] == [(0, None), (1, "PermanentError"), (2, None), (3, None)]
    assert [(c.mail_from, c.rcpt_tos) for c in smtp_server.captured] == [
        ("bounces+a@bounces.example.org", ["a@example.org"]),
        ("bounces+c@bounces.example.org", ["c@example.org"]),
        ("bounces+d@bounces.example.org", ["d@example.org"]),
    ]


def test_a_next_message_to_the_same_address_waits_for_the_outcome_of_the_first(smtp_server):
    asked: list[int] = []
    outcomes: dict[int, object] = {}

    def wanted(index: int) -> bool:  # what deliver does: a refused address gets nothing more
        asked.append(index)
        return not any(outcomes.values()) if index == 1 else True

    messages = [(["x@example.org"], _message("first")), (["x@example.org"], _message("second")), (["y@example.org"], _message("y"))]
    smtp_server.fail_next.append("554 5.7.1 Refused as spam")
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        for index, error in transport.send_each("digest@example.org", messages, wanted):
            outcomes[index] = error
    assert list(outcomes) == [0, 2] and isinstance(outcomes[0], PermanentError) and outcomes[2] is None
    assert sorted(asked) == [0, 1, 2]  # each asked once
    assert [c.rcpt_tos for c in smtp_server.captured] == [["y@example.org"]]


def test_send_delivers_one_message_and_classifies_a_refusal(smtp_server):
    smtp_server.fail_rcpt["b@example.org"] = "550 5.1.1 No such user"
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        transport.send("digest@example.org", ["a@example.org"], _message("a", ".dotted"))
        with pytest.raises(PermanentError, match="550"):
            transport.send("digest@example.org", ["b@example.org"], _message("b"))
        transport.send("digest@example.org", ["c@example.org"], _message("c"))  # the connection still works
        assert transport.connections_opened == 1
    assert [c.rcpt_tos for c in smtp_server.captured] == [["a@example.org"], ["c@example.org"]]
    assert smtp_server.messages[0].get_payload() == ".dotted\r\n"


# ---------------------------------------------------------------- 421: the server closes the connection


def test_a_421_for_one_domain_refuses_its_messages_and_the_others_go_over_a_new_connection(smtp_server):
    """A 421 to RCPT says "try again later, I am closing this connection" (RFC 5321 3.8): that message
    is refused (4xx, not connection trouble) and the stream goes on over a new connection, instead
    of stopping the batch for every other domain."""
    smtp_server.fail_domain["slow.example"] = "421 4.7.0 Too many messages, try again later"
    addresses = ["a@fast.example", "b@slow.example", "c@fast.example", "d@slow.example", "e@other.example"]
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        outcomes = list(transport.send_each("digest@example.org", [([a], _message(a)) for a in addresses]))
        assert transport.connections_opened == 3  # one, then a new one after each 421
    assert [i for i, _ in outcomes] == [0, 1, 2, 3, 4]
    assert [e is None for _, e in outcomes] == [True, False, True, False, True]
    for _, error in (outcomes[1], outcomes[3]):
        assert isinstance(error, TransientError) and not connection_trouble(error) and "421 4.7.0" in str(error)
    assert [c.rcpt_tos for c in smtp_server.captured] == [["a@fast.example"], ["c@fast.example"], ["e@other.example"]]


def test_a_421_at_the_end_of_data_refuses_that_message_and_the_next_goes_over_a_new_connection(smtp_server):
    smtp_server.fail_next.append("421 4.7.0 Try again later, closing connection")  # the first DATA: a's
    messages = [([f"{x}@example.org"], _message(x)) for x in "abc"]
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        outcomes = list(transport.send_each("digest@example.org", messages))
        assert transport.connections_opened == 2
    assert [(i, type(e).__name__ if e else None) for i, e in outcomes] == [(0, "TransientError"), (1, None), (2, None)]
    assert not connection_trouble(outcomes[0][1])
    assert [c.rcpt_tos for c in smtp_server.captured] == [["b@example.org"], ["c@example.org"]]


def test_a_421_that_cannot_be_followed_by_a_new_connection_stops_the_stream_there(smtp_server):
    smtp_server.fail_domain["slow.example"] = "421 4.7.0 Try again later"
    messages = [(["a@slow.example"], _message("a")), (["b@fast.example"], _message("b"))]
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        outcomes = []
        for index, error in transport.send_each("digest@example.org", messages):
            outcomes.append((index, error))
            smtp_server.stop()  # gone before the next message
    assert [i for i, _ in outcomes] == [0, 1]
    assert not connection_trouble(outcomes[0][1]) and connection_trouble(outcomes[1][1])  # b waits for the next run
    assert smtp_server.captured == []


# ---------------------------------------------------------------- 8-bit text (8BITMIME, RFC 6152)

EIGHT_BIT = _message("8-bit", "Über · ▲ 12")


def test_where_the_server_takes_8bitmime_mail_from_declares_it_and_8bit_content_arrives_as_sent(smtp_server):
    with SmtpTransport(SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=5)) as transport:
        assert transport.eight_bit() is True
        outcomes = list(transport.send_each("digest@example.org", [(["a@example.org"], EIGHT_BIT), (["b@example.org"], _message("b"))]))
        transport.send("digest@example.org", ["c@example.org"], EIGHT_BIT)
        assert transport.connections_opened == 1  # eight_bit() asked the connection the messages then used
    assert outcomes == [(0, None), (1, None)]
    assert ["BODY=8BITMIME" in c.mail_options for c in smtp_server.captured] == [True] * 3  # (smtplib adds SIZE=)
    assert [c.data for c in smtp_server.captured] == [EIGHT_BIT, _message("b"), EIGHT_BIT]


def test_where_it_does_not_8bit_content_is_never_sent_and_the_stream_stops_there(pipelining):
    server = SmtpServer(pipelining=pipelining, eight_bit=False)
    server.start()
    try:
        with SmtpTransport(SmtpSettings(host=server.host, port=server.port, timeout=5)) as transport:
            assert transport.eight_bit() is False  # so a batch builds its messages base64
            messages = [(["a@example.org"], _message("a")), (["b@example.org"], EIGHT_BIT), (["c@example.org"], _message("c"))]
            outcomes = list(transport.send_each("digest@example.org", messages))
            with pytest.raises(TransientError, match="8BITMIME"):
                transport.send("digest@example.org", ["d@example.org"], EIGHT_BIT)
            transport.send("digest@example.org", ["e@example.org"], _message("e"))
    finally:
        server.stop()
    assert [index for index, _ in outcomes] == [0, 1] and outcomes[0][1] is None
    assert isinstance(outcomes[1][1], TransientError) and connection_trouble(outcomes[1][1])  # the rest wait for the next run
    assert [c.rcpt_tos for c in server.captured] == [["a@example.org"], ["e@example.org"]]
    assert not any("BODY=8BITMIME" in c.mail_options for c in server.captured)


def test_eight_bit_is_false_when_the_server_cannot_be_reached():
    transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2))
    assert transport.eight_bit() is False
    with pytest.raises(TransientError, match="cannot connect"):
        transport.send("digest@example.org", ["a@example.org"], _message("a"))
