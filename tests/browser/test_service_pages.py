"""The served app's own pages, as an operator or a browser meets them (no browser needed)."""

from __future__ import annotations

import httpx

from tests.fixtures.served import LiveService


def test_the_embedded_service_serves_chat_docs_console_and_metrics(live_service: LiveService) -> None:
    with httpx.Client(base_url=live_service.url, timeout=10) as http:
        chat = http.get("/chat")
        assert chat.status_code == 200
        assert "sealbot_chat" in chat.headers.get("set-cookie", "")
        assert http.get("/").headers["location"] == "/chat"

        docs = http.get("/platform/docs")
        assert docs.status_code == 200
        assert "/platform/openapi.json" in docs.text
        spec = http.get("/platform/openapi.json").json()
        assert "/v1/orders" in spec["paths"]
        assert "/v1/sessions" in spec["paths"]

        assert http.get("/console").headers["location"] == "/platform/console/"
        assert http.get("/platform/console/login").status_code == 200
        assert http.get("/support/login").status_code == 200
        anonymous = http.get("/support/reminders", follow_redirects=False)
        assert anonymous.status_code == 303  # to the support login, not the page
        assert anonymous.headers["location"] == "/support/login"

        metrics = http.get("/metrics").text
        assert "sealbot_outbox_sent_total" in metrics
        assert http.get("/healthz").json() == {"status": "ok"}
