"""The staff console at ``/console``: server-rendered pages for review, production, shipping,
invoicing, the audit log and staff user management.

Staff log in with a password (argon2 hashes of ``staff.StaffUser``) and get a server-side
session (``sessions``); every POST carries the session's CSRF token and is checked against the
staff member's roles (``auth``). Actions go through ``staff_actions`` and ``invoices`` so that
each one is audited; the console only reads the database directly.
"""
