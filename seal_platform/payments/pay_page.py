"""The sandbox pay page: amount, order summary, a QR code of the page, and a "pay" button.

Plain HTML with a form POST (no JavaScript needed), laid out to fit a phone as well as a desktop.
Everything shown is escaped by Jinja2's autoescaping.
"""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

ORDER_TYPE_LABELS = {
    "enterprise_seal": "企业公章办理",
    "personal_seal": "法人个人章办理",
    "bundle": "企业公章及法人章办理",
    "renewal": "印章续期",
    "change": "印章变更",
    "reissue": "印章补办",
    "unlock": "印章解锁",
}

_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
  body { font-family: system-ui, -apple-system, "Noto Sans CJK SC", sans-serif; margin: 0;
         background: #f4f5f7; color: #1f2328; }
  main { max-width: 26rem; margin: 0 auto; padding: 1.25rem; }
  .card { background: #fff; border-radius: 12px; padding: 1.25rem; box-shadow: 0 1px 3px rgba(0,0,0,.1); }
  h1 { font-size: 1.15rem; margin: 0 0 .75rem; }
  .amount { font-size: 2rem; font-weight: 700; margin: .5rem 0 1rem; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .35rem .75rem; margin: 0 0 1rem; }
  dt { color: #6b7280; } dd { margin: 0; word-break: break-all; }
  img.qr { display: block; width: 100%; max-width: 14rem; height: auto; margin: 0 auto 1rem; }
  button { width: 100%; padding: .9rem; font-size: 1.05rem; border: 0; border-radius: 8px;
           background: #07c160; color: #fff; cursor: pointer; }
  .status { padding: .75rem; border-radius: 8px; text-align: center; font-weight: 600; }
  .ok { background: #e7f8ee; color: #067d3c; } .bad { background: #fdecec; color: #b42318; }
  .note { color: #6b7280; font-size: .85rem; margin-top: 1rem; }
</style>
</head>
<body>
<main>
  <div class="card">
    <h1>{{ title }}</h1>
    <div class="amount" id="amount">¥{{ amount }}</div>
    <dl>
      <dt>订单</dt><dd id="order-type">{{ order_label }}</dd>
      <dt>订单号</dt><dd id="order-id">{{ order_id }}</dd>
      {% if years %}<dt>年限</dt><dd>{{ years }} 年</dd>{% endif %}
    </dl>
    {% if state == "pending" %}
      <img class="qr" src="{{ qr_url }}" alt="付款二维码" width="240" height="240">
      <form method="post" action="">
        <button type="submit" id="pay">确认支付 ¥{{ amount }}</button>
      </form>
      <p class="note">沙箱支付：不会产生真实扣款。</p>
    {% elif state == "succeeded" %}
      <p class="status ok" id="status">支付成功，请返回对话继续。</p>
    {% elif state == "refund_required" %}
      <p class="status bad" id="status">订单已失效，款项将原路退回。</p>
    {% else %}
      <p class="status bad" id="status">此支付已关闭。</p>
    {% endif %}
  </div>
</main>
</body>
</html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _env.from_string(_TEMPLATE)


def yuan(amount_fen: int) -> str:
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def render_pay_page(
    *,
    payment_id: str,
    state: str,
    amount_fen: int,
    order_id: str,
    order_type: str,
    years: int | None,
    service_name: str = "电子印章服务",
) -> str:
    """The page at ``/pay/{payment_id}``; its form posts back to the same URL."""
    return _template.render(
        title=f"{service_name} · 订单支付",
        amount=yuan(amount_fen),
        order_label=ORDER_TYPE_LABELS.get(order_type, order_type),
        order_id=order_id,
        years=years,
        state=state,
        qr_url=f"{payment_id}/qr.png",
    )
