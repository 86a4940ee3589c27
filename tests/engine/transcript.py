"""Transcript helpers: the FORM flow walked step by step in either language.

Prompts are spelled out literally (what the user reads), so a test fails when the wording or
the step counter a user sees changes, not only when the engine's internals do.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.testing import ChatHarness

# A valid resident ID number (checksum X) and the PNG signature used as an upload.
ID_NUMBER = "11010519491231002X"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@dataclass(frozen=True)
class Lang:
    code: str
    hello: str
    form: str
    company: str
    person: str
    ask_name: str
    ask_kind: str
    ask_company: str
    ask_age: str
    ask_id: str
    ask_scan: str
    summary_title: str
    confirm: str
    edit_kind: str
    waiting: str
    menu: str
    back: str
    cancel: str
    help: str
    human: str

    def step(self, n: int, total: int, prompt: str) -> str:
        if self.code == "en":
            return f"(Step {n}/{total}) {prompt}"
        return f"（第 {n}/{total} 步） {prompt}"


ZH = Lang(
    code="zh-CN",
    hello="你好",
    form="测试表单",
    company="单位",
    person="个人",
    ask_name="请输入姓名：",
    ask_kind="请选择类型：",
    ask_company="请输入单位名称：",
    ask_age="请输入年龄：",
    ask_id="请输入身份证号：",
    ask_scan="请上传扫描件（JPG/PDF/PNG，不超过 1 KB）：",
    summary_title="请核对以下信息：",
    confirm="确认无误，提交",
    edit_kind="修改类型",
    waiting="等待支付中。",
    menu="您好，我是电子印章办理助手。请选择要办理的业务，或直接告诉我您想做什么：",
    back="返回",
    cancel="取消",
    help="帮助",
    human="人工",
)

EN = Lang(
    code="en",
    hello="hello",
    form="Test form",
    company="Company",
    person="Person",
    ask_name="Your name:",
    ask_kind="Choose a kind:",
    ask_company="Company name:",
    ask_age="Your age:",
    ask_id="Your ID number:",
    ask_scan="Upload the scan (JPG/PDF/PNG, at most 1 KB):",
    summary_title="Please check your details:",
    confirm="All correct, submit",
    edit_kind="Change Kind",
    waiting="Waiting for payment.",
    menu="Hello, I am the e-seal assistant. Choose a service below, or just tell me what you need:",
    back="back",
    cancel="cancel",
    help="help",
    human="human",
)

# Cancelling a run that holds answers (issue 13): the question, its confirming button, the notice.
CANCEL_CONFIRM = {
    "zh-CN": "确定要取消「测试表单」吗？您已填写的信息会保存为草稿，7 天内可以从菜单继续。",
    "en": 'Cancel "Test form"? What you have filled in is kept as a draft you can continue from the menu '
    "within 7 days.",
}
CANCEL_KEEP = {"zh-CN": "继续办理", "en": "Continue"}
CANCEL_REALLY = {"zh-CN": "确认取消", "en": "Yes, cancel"}
CANCELLED_DRAFT = {
    "zh-CN": "已取消「测试表单」。已填写的信息保存为草稿，7 天内可以在菜单中点「从草稿继续」接着办理。",
    "en": '"Test form" cancelled. Your answers are kept as a draft for 7 days: tap "Continue draft" in the '
    "menu to pick up where you left off.",
}
STALE = {
    "zh-CN": "这个按钮已过期（来自之前的步骤），请按下面最新的提示操作。",
    "en": "That button has expired (it belongs to an earlier step). Please follow the latest prompt below.",
}

# The steps of FORM with kind=company, in order; ``fill_form`` stops before ``until``.
STEPS = ("start", "name", "kind", "company", "age", "id_number", "scan", "confirm", "payment")


async def fill_form(chat: ChatHarness, lang: Lang, *, until: str, user: str = "u1") -> list[str]:
    """Answer FORM as a company up to (not including) step ``until``; returns the last replies."""
    replies: list[str] = []
    for step in STEPS[: STEPS.index(until)]:
        if step == "start":
            await chat.say(lang.hello, user=user, lang=lang.code)
            replies = await chat.tap(lang.form, user=user)
        elif step == "name":
            replies = await chat.say("张三" if lang.code == "zh-CN" else "Alice Zhang", user=user)
        elif step == "kind":
            replies = await chat.tap(lang.company, user=user)
        elif step == "company":
            replies = await chat.say("某某科技有限公司" if lang.code == "zh-CN" else "Acme Ltd", user=user)
        elif step == "age":
            replies = await chat.say("30", user=user)
        elif step == "id_number":
            replies = await chat.say(ID_NUMBER, user=user)
        elif step == "scan":
            replies = await chat.upload(PNG, user=user)
        elif step == "confirm":
            replies = await chat.tap(lang.confirm, user=user)
    return replies


async def run_answers(chat: ChatHarness, user: str = "u1") -> dict[str, object]:
    """The answers of the user's current run as stored (empty when no process runs)."""
    row = await chat.store.get(chat.key(user))
    assert row is not None
    state = chat.engine.codec.load(row.state)
    return dict(state.run.answers) if state.run else {}
