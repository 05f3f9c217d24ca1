"""The operator's console at /admin: sign-in (:mod:`~digest.web.admin.auth`), the dashboard with its
charts (:mod:`~digest.web.admin.charts` over :mod:`~digest.web.admin.series`, drawn by
:mod:`~digest.web.admin.svg`), a subscriber's page, the actions (ingest now, pause and resume sending,
suppress and restore an address) and the audit log (:mod:`~digest.web.admin.views`).

Accounts are made on the command line (``digest admin create EMAIL``); every page but the sign-in
form needs a session, and every action writes an audit entry in its own transaction.
"""
