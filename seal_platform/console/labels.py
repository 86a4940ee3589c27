"""What the console shows for platform codes: status, order type and role names, and the
staff-facing wording of the platform's refusals."""

from __future__ import annotations

from seal_platform.errors import PlatformError

STATUS_LABELS = {
    "draft": "草稿",
    "awaiting_payment": "待支付",
    "paid": "已支付",
    "under_review": "待审核",
    "rejected": "已驳回",
    "resubmitted": "已重新提交",
    "approved": "审核通过",
    "in_production": "制作中",
    "shipped": "已邮寄",
    "awaiting_ukey": "待UKey操作",
    "completed": "已完成",
    "cancelled": "已取消",
    "expired": "已过期",
    "requested": "待开票",
    "issued": "已开票",
}

ORDER_TYPE_LABELS = {
    "enterprise_seal": "企业公章",
    "personal_seal": "法人个人章",
    "bundle": "企业公章+法人章",
    "renewal": "续期",
    "change": "变更",
    "reissue": "补办",
    "unlock": "解锁",
    "cancellation": "注销",
}

ROLE_LABELS = {
    "reviewer": "审核",
    "producer": "制作",
    "shipper": "邮寄",
    "finance": "财务开票",
    "support": "客服",
    "admin": "管理员",
}

DOCUMENT_ROLE_LABELS = {
    "business_licence": "营业执照（加盖公章）",
    "impression_form": "印模采集表",
    "impression_form_enterprise": "印模采集表（企业章）",
    "impression_form_personal": "印模采集表（法人章）",
    "id_card_front": "法人身份证人像面",
    "id_card_back": "法人身份证国徽面",
}

SEAL_KIND_LABELS = {"enterprise": "企业公章", "personal": "法人个人章"}

ACTION_LABELS = {
    "approve": "审核通过",
    "reject": "驳回",
    "produce": "制作",
    "ship": "邮寄",
    "complete": "签收完成",
    "issue_invoice": "开具发票",
    "preview_document": "查看材料",
    "view_order": "查看订单详情",
    "reveal_value": "查看完整信息",
    "create_staff_user": "新建员工",
    "reset_staff_password": "重置密码",
    "disable_staff_user": "停用员工",
    "enable_staff_user": "启用员工",
}

# Field names of audit snapshots and order details, as staff read them.
FIELD_LABELS = {
    "status": "状态",
    "reject_reason": "驳回原因",
    "waybill": "运单号",
    "tracking_url": "物流查询链接",
    "result": "办理结果",
    "invoice_number": "发票号码",
    "document_id": "文件编号",
    "username": "用户名",
    "roles": "角色",
    "active": "启用",
    "password": "密码",
    "kind": "类型",
    "seal_ids": "印章编号",
    "seal_cancelled_at": "注销时间",
}

OBJECT_TYPE_LABELS = {"order": "订单", "invoice": "发票", "document": "材料", "staff_user": "员工"}


def field_value(field: str, value: object) -> object:
    """A snapshot value in words where it is a code: a status, a role list, a yes/no."""
    if field == "status" and isinstance(value, str):
        return STATUS_LABELS.get(value, value)
    if field == "kind" and isinstance(value, str):
        return DOCUMENT_ROLE_LABELS.get(value, SEAL_KIND_LABELS.get(value, value))
    if field == "roles" and isinstance(value, list):
        return "、".join(ROLE_LABELS.get(str(r), str(r)) for r in value)
    if field == "active" and isinstance(value, bool):
        return "是" if value else "否"
    if field == "password" and value == "changed":
        return "已重置"
    return value


# Refusals whose own message is written for developers: what staff should read instead.
_REFUSALS = {
    "invalid_transition": "订单当前状态不允许此操作（可能已被其他同事处理），请刷新后查看。",
    "reason_required": "请填写驳回原因，说明申请人需要如何修改（至少4个字）。",
    "invoice_already_issued": "这张发票已经开具过了。",
    "invoice_being_issued": "这张发票正在开具中（另一次点击已提交给开票服务）：请稍后刷新页面查看结果。",
    "staff_role_required": "您的角色无权执行此操作。",
    "not_found": "找不到这条记录。",
    "weak_password": "员工密码至少10位。",
    "staff_username_taken": "用户名已被使用。",
    "seal_missing": "订单对应的印章不存在，无法制作。",
    "company_missing": "订单对应的单位不存在，无法制作。",
    # the production station (seal_platform/production/station.py); nothing was recorded
    "station_no_blank_key": "制作台没有插入 UKey：请插入一枚空白 UKey 后重试。",
    "station_key_not_blank": "插入的 UKey 不是空白的（已初始化或属于其他印章）：请换一枚空白 UKey 后重试。",
    "station_wrong_key": "插入的 UKey 不是这次制作所用的那枚：请插回原来的 UKey 后重试。",
    "station_key_removed": "写入过程中 UKey 被拔出：请插回同一枚 UKey 后重试，制作会从中断处继续。",
    "station_write_unverified": "写入后读回校验未通过，未记录为已制作：请重试，仍失败请换一枚空白 UKey。",
    "station_issuance_failed": "平台未能为这枚 UKey 签发证书，未记录为已制作：请稍后重试。",
    "station_failed": "制作台写入 UKey 失败，未记录为已制作：请重试。",
    "station_not_configured": "制作台未配置 PKCS#11 模块（PLATFORM_STATION_PKCS11_MODULE）。",
    "station_offline": "您的制作台不在线：请在配对给您账号的制作台电脑上运行 ukey-bridge run 后重试（制作不会交给其他同事的制作台）。",
    "station_disconnected": "制作过程中制作台断开了连接，未记录为已制作：请确认制作台在线后重试，制作会从中断处继续。",
    "station_timeout": "制作台长时间没有回应，未记录为已制作：请检查制作台电脑后重试。",
    "station_busy": "制作台拒绝了这次制作（可能正在制作另一枚 UKey）：请稍后重试。",
    "production_running": "这笔订单正在制作中（您或同事已点了制作）：请等待本次制作完成，不要重复点击。若制作因平台重启而中断，等待约 6 分钟（套装两枚 UKey 约 12 分钟）后可以重新制作。",
    "seal_cancelled": "这枚印章已注销，不能再制作。",
    "seal_term_ended": "这枚印章的有效期已结束，请先续期。",
}


REFUSAL_TEXTS = _REFUSALS

# The steps a production station reports (seal_platform/production/progress.py), as staff read them.
PRODUCTION_STEP_LABELS = {
    "init_token": "初始化空白 UKey",
    "generate_key": "在 UKey 内生成密钥",
    "certify": "签发证书与电子印章",
    "write": "写入证书与电子印章",
    "verify": "读回校验",
}


def refusal_text(error: PlatformError) -> str:
    """A sentence for staff; the platform's own message when it is already written for people."""
    return _REFUSALS.get(error.code, error.message)
