"""The secure password page: where passwords are set (registration, reset) and typed (login).

No chat ever asks for a password: a message stays forever in the user's phone and on the
messenger's servers. A flow that needs one parks at a Wait and sends a button with a
single-use link (10 minutes, bound to that conversation); the page takes the password, calls
the platform, and delivers an event to the conversation, which continues by itself.

It lives in the bot, not in the platform, because the link belongs to a conversation (the
bot's data) and the page's outcome is a conversation event; to the platform it is one more
client calling the accounts API. ``links`` signs the links, ``service`` holds the rules (used
by the HTTP page and by the terminal chat, which reads the password without echo), ``router``
is the page itself.
"""
