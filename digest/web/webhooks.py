"""Webhooks for mail providers: ``POST /webhooks/bounces/ses`` takes Amazon SES's bounce, complaint
and delivery notifications as Amazon SNS posts them; :mod:`digest.bounces.ses` checks each message's
topic and signature and records what it reports. No cookie, no CSRF token: SNS's signature is the
credential. Off (404) until ``DIGEST_SES_TOPIC_ARN`` names a topic.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect

from digest.bounces import ses
from digest.config import Settings


def ses_notification() -> Response:
    request.max_content_length = ses.MAX_BODY  # the app's limit is for forms; an SNS message may be 256 KB
    body = request.get_data(cache=False)  # past the limit: Flask's 413
    reply = ses.receive(current_app.config["DIGEST_SETTINGS"], body, datetime.now(timezone.utc))
    return Response(reply.text + "\n", reply.status, mimetype="text/plain")


def register(app: Flask, limiter: Limiter, csrf: CSRFProtect, settings: Settings) -> None:
    # SNS posts from a few AWS addresses, a burst of them after a large send: its own limit, not the site's default
    limit = settings.extra.get("rate_limit_webhooks", "1200 per minute")
    csrf.exempt(ses_notification)  # SNS posts without cookies or a CSRF token
    app.add_url_rule("/webhooks/bounces/ses", "ses_notification", limiter.limit(limit)(ses_notification), methods=["POST"])
