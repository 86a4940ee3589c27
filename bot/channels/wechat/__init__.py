"""The WeChat official account (公众号) channel, with wechatpy kept behind this adapter."""
