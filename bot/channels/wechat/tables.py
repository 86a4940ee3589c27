"""The WeChat channel's tables, on the bot's metadata (created with the engine's)."""

from __future__ import annotations

import sqlalchemy as sa

from bot.db import Base

metadata = Base.metadata

# One access token per official account, shared by all workers.
wechat_tokens = sa.Table(
    "wechat_tokens",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("token", sa.String(512), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Callback nonces seen within the timestamp window, with a digest of the body they signed.
wechat_nonces = sa.Table(
    "wechat_nonces",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("timestamp", sa.String(16), primary_key=True),
    sa.Column("body_digest", sa.String(64), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# What each delivery (MsgId, or openid:CreateTime:Event) was answered with, so that WeChat's
# retries get the same answer; ``body`` stays NULL while the first request decides.
wechat_deliveries = sa.Table(
    "wechat_deliveries",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("delivery_id", sa.String(160), primary_key=True),
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# The customer-service allowance of one user: ``allowance`` messages until ``expires_at``.
wechat_cs_quota = sa.Table(
    "wechat_cs_quota",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("openid", sa.String(128), primary_key=True),
    sa.Column("allowance", sa.Integer, nullable=False),
    sa.Column("used", sa.Integer, nullable=False),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Messages that did not fit the quota, delivered when the user opens the next window.
wechat_cs_backlog = sa.Table(
    "wechat_cs_backlog",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appid", sa.String(64), nullable=False),
    sa.Column("openid", sa.String(128), nullable=False, index=True),
    sa.Column("reply", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Subscription-message consent (一次性订阅 / 订阅通知): accept, reject, or used.
wechat_subscriptions = sa.Table(
    "wechat_subscriptions",
    metadata,
    sa.Column("appid", sa.String(64), primary_key=True),
    sa.Column("openid", sa.String(128), primary_key=True),
    sa.Column("template_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
