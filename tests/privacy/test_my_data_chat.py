"""导出我的信息 and 注销账号 from the chat, end to end through the embedded platform, each with
the SMS code sent to the account's phone; in Chinese and in English."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.engine.messages import ReplyKind
from bot.engine.tables import conversations, inbound_receipts
from platform_client.errors import PlatformClientError
from tests.conversations.conftest import Service
from tests.platform.conftest import ADULT_ID_NUMBER
from tests.platform.test_orders_support import ADDRESS, COMPANY
from tests.privacy.scans import noisy_png

PHONE = "13800138901"
PASSWORD = "seal2024ok"


def joined(lines: list[str]) -> str:
    return "\n".join(lines)


async def registered(service: Service) -> str:
    """A verified account made on the platform; returns its token."""
    platform = service.container.platform
    await platform.accounts.send_sms_code(PHONE, "register")
    registration = await platform.accounts.register(PHONE, service.sms_code(PHONE, "register"), PASSWORD)
    token = registration.session.token
    await platform.accounts.verify_realname(token, name="张三", id_number=ADULT_ID_NUMBER)
    return token


async def log_in(service: Service, user: str, *, lang: str = "zh") -> None:
    chat = service.chat
    if lang == "en":
        await chat.say("log in", user=user, lang="en")
        await chat.say(PHONE, user=user)
        await chat.tap("SMS code", user=user)
        assert "Logged in" in joined(await chat.say(service.sms_code(PHONE, "login"), user=user))
    else:
        await chat.say("登录", user=user)
        await chat.say(PHONE, user=user)
        await chat.tap("手机号 + 短信验证码", user=user)
        assert "登录成功" in joined(await chat.say(service.sms_code(PHONE, "login"), user=user))
    service.clock.advance(timedelta(minutes=2))  # past the SMS resend cooldown


async def draft_order(service: Service, token: str) -> str:
    platform = service.container.platform
    licence = await platform.documents.upload(token, "business_licence", noisy_png(3), filename="licence.png")
    form = await platform.documents.upload(token, "impression_form", noisy_png(4), filename="form.png")
    order = await platform.orders.create(
        token,
        {
            "type": "enterprise_seal",
            "company": COMPANY,
            "years": 1,
            "mailing_address": ADDRESS,
            "documents": {"business_licence": licence.id, "impression_form_enterprise": form.id},
        },
    )
    return order.id


async def zip_sent(service: Service, user: str) -> zipfile.ZipFile:
    files = [
        m.reply for m in service.chat.sender.sent if m.key.user_id == user and m.reply.kind == ReplyKind.FILE
    ]
    assert len(files) == 1
    file = files[0].file
    assert file is not None
    assert file.filename == "my-data.zip"
    return zipfile.ZipFile(io.BytesIO(await service.container.engine.media.get(file.media_id)))


async def test_export_in_chinese_sends_a_zip_of_everything_after_the_sms_code(service: Service) -> None:
    token = await registered(service)
    order_id = await draft_order(service, token)
    await log_in(service, "u1")
    chat = service.chat
    asked = joined(await chat.say("导出我的信息"))
    assert "验证码已发送到您账号的手机 138****8901" in asked
    assert "请输入 6 位短信验证码" in asked
    wrong = joined(await chat.say("000000"))
    assert "验证码不正确，还可以再试 4 次" in wrong
    done = joined(await chat.say(service.sms_code(PHONE, "export_data")))
    assert "您的信息已打包好" in done
    archive = await zip_sent(service, "u1")
    data = json.loads(archive.read("data.json"))
    assert data["account"]["phone"] == PHONE
    assert data["account"]["id_number"] == ADULT_ID_NUMBER
    assert data["orders"][0]["id"] == order_id
    assert data["orders"][0]["mailing_address"] == ADDRESS
    licence = next(d for d in data["documents"] if d["kind"] == "business_licence")
    assert archive.read(licence["file"]) == noisy_png(3)


async def test_export_in_english(service: Service) -> None:
    await registered(service)
    await log_in(service, "u1", lang="en")
    chat = service.chat
    asked = joined(await chat.say("export my data"))
    assert "A code was sent to your account's phone 138****8901" in asked
    done = joined(await chat.say(service.sms_code(PHONE, "export_data")))
    assert "Your data is ready" in done
    data = json.loads((await zip_sent(service, "u1")).read("data.json"))
    assert data["account"]["real_name"] == "张三"


async def test_deletion_in_chinese_is_refused_while_an_order_is_open_and_says_what_to_do(
    service: Service,
) -> None:
    token = await registered(service)
    order_id = await draft_order(service, token)
    await service.container.platform.orders.submit(token, order_id)
    await log_in(service, "u1")
    refused = joined(await service.chat.say("注销账号"))
    assert "暂时不能注销" in refused
    assert "企业公章订单（" in refused
    assert "注销印章" in refused
    assert "验证码" not in refused  # no code was sent for a deletion that cannot happen
    # nothing changed: still logged in, the order is there
    assert "订单：1 个" in joined(await service.chat.say("我的信息"))


async def test_deletion_in_english_erases_the_account_and_logs_out_every_chat(service: Service) -> None:
    token = await registered(service)
    order_id = await draft_order(service, token)
    await service.container.platform.orders.cancel(token, order_id)
    await log_in(service, "office-pc")
    await service.chat.say("推送设置", user="office-pc")  # something of theirs in another chat
    await log_in(service, "u1", lang="en")
    chat = service.chat
    preview = joined(await chat.say("delete my account"))
    assert "2 uploaded files" in preview
    assert "This cannot be undone" in preview
    sent = joined(await chat.tap("Delete it"))
    assert "A code was sent to your account's phone 138****8901" in sent
    wrong = joined(await chat.say("000000"))
    assert "not correct" in wrong
    done = joined(await chat.say(service.sms_code(PHONE, "delete_account")))
    assert "Your account is deleted" in done

    # every login ended: the other chat is asked to log in again
    other = joined(await chat.say("我的信息", user="office-pc"))
    assert "登录" in other
    assert "我们保存的您的信息" not in other
    # the account's phone and password no longer log in
    with pytest.raises(PlatformClientError) as refused:
        await service.container.platform.accounts.login_password(PHONE, PASSWORD)
    assert refused.value.code == "wrong_credentials"
    # the bot's stores forgot what the account's chats held
    db = service.container.db
    async with db.connect() as conn:
        bodies = (
            (
                await conn.execute(
                    sa.select(inbound_receipts.c.body)
                    .join(conversations, conversations.c.id == inbound_receipts.c.conversation_id)
                    .where(conversations.c.user_id == "office-pc")
                )
            )
            .scalars()
            .all()
        )
    kept = [body["text"] for body in bodies if body != {"text": "[已删除 / deleted]"}]
    assert len(bodies) >= 5
    assert kept == ["我的信息"]  # only what was sent after the deletion


async def conversation_row(service: Service, user: str) -> sa.Row[tuple[int, str | None, dict[str, object]]]:
    async with service.container.db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(
                    conversations.c.version, conversations.c.platform_account_id, conversations.c.state
                ).where(conversations.c.user_id == user)
            )
        ).one()
    return row


async def test_deletion_empties_the_stored_state_of_every_other_chat_of_the_account(service: Service) -> None:
    token = await registered(service)
    order_id = await draft_order(service, token)
    await service.container.platform.orders.cancel(token, order_id)
    await log_in(service, "office-pc")
    await service.chat.say("推送设置", user="office-pc")  # a process left open in the other chat
    before = await conversation_row(service, "office-pc")
    assert before.platform_account_id is not None
    assert before.state["session"] is not None
    assert before.state["run"] is not None  # the open 推送设置 process

    await log_in(service, "u1")
    await service.chat.say("注销账号")
    await service.chat.tap("确定注销")
    done = joined(await service.chat.say(service.sms_code(PHONE, "delete_account")))
    assert "已注销" in done

    after = await conversation_row(service, "office-pc")
    assert after.version == before.version + 1
    assert after.platform_account_id is None
    state = after.state
    assert state["session"] is None
    assert state["run"] is None
    assert state["stack"] == []
    assert state["memory"] == {}
    assert state["locale"] == before.state["locale"]
    assert before.platform_account_id not in json.dumps(state)
