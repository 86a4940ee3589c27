"""Personal (legal representative's) seal application (个人印章 / 法人签名印章申领, manual 1.2.5):
ID card front and back instead of the licence; otherwise the steps of
``handlers.apply_common.application_flow``."""

from __future__ import annotations

from handlers.apply_common import application_flow
from handlers.menu import MenuItem

APPLY_PERSONAL = application_flow("personal")

FLOWS = (APPLY_PERSONAL,)

MENU = (MenuItem("apply_personal", "apply.title_personal", visible=lambda ctx: ctx.logged_in, order=21),)

INTENTS = {
    "apply_personal": (
        "申请法人章",
        "办理法人章",
        "法人印章",
        "法人签名印章",
        "申请个人印章",
        "个人印章申领",
        "法人章",
        "legal representative seal",
        "personal seal",
        "apply for personal seal",
        "apply for a legal representative seal",
        "signature seal",
    ),
}
