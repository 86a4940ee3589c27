"""What operators watch, shared by the bot and the platform: Prometheus metrics and JSON logs.

Neither the bot nor the platform is imported here, so both sides can use it without breaking
the rule that the platform knows nothing of the bot.
"""
