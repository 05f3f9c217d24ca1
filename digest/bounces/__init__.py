"""What comes back after a send: bounces, complaints and auto-replies, to the VERP address each
message went out from (:mod:`digest.mail.verp`).

In this order of imports: ``rules.py`` (the state machine: what an event does to its address),
``events.py`` (``record``: store an event once, apply the rules — THE entry point of every intake),
``reports.py`` (one received message read: what it reports, about whose mail), ``intake.py`` (a
message received, or every message of a file, an mbox or a Maildir, recorded), ``listener.py``
(``digest bounces serve``: the SMTP server for the bounce domain).
"""
