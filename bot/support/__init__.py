"""Support staff takeover: the inbox, the Telegram staff desk, timeouts and the audit trail."""
