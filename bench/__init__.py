"""Benchmarks: the form workload on the engine and on its peers (python-telegram-bot, aiogram)."""
