"""The Telegram channel: python-telegram-bot as the transport, the engine runs the dialog."""
