"""Posting to team chat through incoming webhooks (Slack, Microsoft Teams): the one module
that talks HTTP for notifications (STYLE.md: every outside system behind one module).

The URL is a secret: it never appears in a log line or an error message (`WebhookError`
names only the host). One attempt per call with a short timeout; the caller
(`notifications.services.webhook_deliveries_send`) owns the retries and their backoff.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

TIMEOUT = (3.05, 5)  # connect, read: a slow channel never holds a worker for long
TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class WebhookError(Exception):
    """A post that did not go through. `transient`: worth trying again later;
    `retry_after`: seconds the service asked for (429). The message names the host only."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


def payload(service: str, *, title: str, body: str, url: str) -> dict:
    """The message in the service's shape: Slack's `text` with mrkdwn link; for Teams an
    Adaptive Card (what Teams' Workflows webhooks take; the old connectors too)."""
    if service == "slack":
        title_md = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = f"*<{url}|{title_md}>*" if url else f"*{title_md}*"
        return {"text": f"{text}\n{body}" if body else text}
    facts = [{"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": True}]
    if body:
        facts.append({"type": "TextBlock", "text": body, "wrap": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": facts,
        "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": url}] if url else [],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def post(url: str, message: dict) -> None:
    """POST the JSON message; raises WebhookError (URL-free) when it was not accepted."""
    host = urlsplit(url).hostname or "the webhook"
    if urlsplit(url).scheme not in ("https", "http"):
        raise WebhookError("The webhook URL is not an http(s) URL.", transient=False)
    try:
        response = requests.post(url, json=message, timeout=TIMEOUT, allow_redirects=False)
    except requests.Timeout:
        raise WebhookError(f"{host} did not answer in time", transient=True) from None
    except requests.RequestException as exc:
        # The exception's text carries the URL: keep only its type.
        raise WebhookError(f"{host}: {type(exc).__name__}", transient=True) from None
    if 200 <= response.status_code < 300:
        return
    retry_after = None
    if response.status_code == 429:
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
    transient = response.status_code in TRANSIENT_STATUSES
    logger.warning("Chat webhook at %s answered HTTP %s", host, response.status_code)
    raise WebhookError(
        f"{host} answered HTTP {response.status_code}",
        transient=transient,
        retry_after=retry_after,
    )
