"""Enterprise seal application (企业印章申领, manual 1.2.5): the company seal, or both seals as
one order. The steps are ``handlers.apply_common.application_flow``; this module names the
process for the menu and for free text."""

from __future__ import annotations

from handlers.apply_common import application_flow
from handlers.menu import MenuItem

APPLY_ENTERPRISE = application_flow("enterprise")

FLOWS = (APPLY_ENTERPRISE,)

MENU = (MenuItem("apply_enterprise", "apply.title_enterprise", visible=lambda ctx: ctx.logged_in, order=20),)

INTENTS = {
    "apply_enterprise": (
        "申请企业公章",
        "申领企业印章",
        "办理企业印章",
        "企业印章申领",
        "申请公章",
        "办理公章",
        "我要刻章",
        "刻公章",
        "企业公章",
        "company seal",
        "enterprise seal",
        "apply for enterprise seal",
        "apply for a company seal",
        "new company seal",
    ),
}
