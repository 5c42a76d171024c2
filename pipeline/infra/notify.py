"""Alert delivery to WeCom and DingTalk group robots, with retries and backoff.

Every attempt's outcome becomes a delivery record (``alert_deliveries``): a delivery that
keeps failing is kept with its attempts and last error, never silently dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.intake import now_iso

SEVERITY_ZH = {"high": "高", "medium": "中", "low": "低"}


def _markdown(alert: dict[str, Any]) -> str:
    if alert.get("kind") == "deal_intent":
        return _push_markdown(alert)
    if alert.get("kind") == "deal_top3":
        lines = "\n".join(f"> {t}" for t in alert.get("conversation") or [])
        return f"**{alert['title']}**\n{lines}"
    return (
        f"**客户预警（{SEVERITY_ZH.get(alert['severity'], alert['severity'])}）**\n"
        f"> {alert['title']}\n"
        f"> 客户：{alert['customer_id']}　健康度：{alert['score']:.0f}（{alert['band']}）\n"
        f"> 负责人：{alert['assignee']}　触发时间：{alert['raised_at'][:16].replace('T', ' ')}"
    )


def _push_markdown(push: dict[str, Any]) -> str:
    """A high-intent push to the deal's rep: who read what, the recent talks, the rival's quote."""
    talks = "\n".join(f"> - {t}" for t in push.get("conversation") or []) or "> - （暂无沟通记录）"
    return (
        f"**{push['title']}**\n"
        f"> 商机：{push['opportunity_id']}　负责人：{push['rep_id']}\n"
        f"> 最近沟通：\n{talks}\n"
        f"> 竞品报价：{push['competitor_quote']}\n"
        f"> 时间：{push['raised_at'][:16].replace('T', ' ')}"
    )


def ident(item: dict[str, Any]) -> str:
    """An alert's id, or a deal push's."""
    return str(item.get("alert_id") or item["push_id"])


def wecom_body(alert: dict[str, Any]) -> dict[str, Any]:
    """WeCom group robot: msgtype markdown."""
    return {"msgtype": "markdown", "markdown": {"content": _markdown(alert)}}


def dingtalk_body(alert: dict[str, Any]) -> dict[str, Any]:
    """DingTalk custom robot: msgtype markdown with a title."""
    return {"msgtype": "markdown", "markdown": {"title": alert["title"][:64], "text": _markdown(alert)}}


def dingtalk_signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    """DingTalk's optional signature: HMAC-SHA256 of "timestamp\\nsecret", base64, in the query."""
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign}"


@dataclass(frozen=True)
class Target:
    channel: str  # "wecom" | "dingtalk"
    url: str
    secret: str = ""

    def body(self, alert: dict[str, Any]) -> dict[str, Any]:
        return wecom_body(alert) if self.channel == "wecom" else dingtalk_body(alert)

    def endpoint(self) -> str:
        return dingtalk_signed_url(self.url, self.secret) if self.channel == "dingtalk" and self.secret else self.url


def post_json(url: str, body: dict[str, Any], timeout: float = 5.0) -> None:
    """POST and require the robots' success answer ``errcode == 0``; raise otherwise."""
    req = urllib.request.Request(  # noqa: S310  # URL comes from operator settings
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310  # as above
        answer = orjson.loads(resp.read() or b"{}")
    if answer.get("errcode", 0) != 0:
        raise RuntimeError(f"robot answered errcode={answer.get('errcode')}: {answer.get('errmsg', '')}")


def deliver(
    alert: dict[str, Any],
    target: Target,
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    post: Callable[[str, dict[str, Any]], None] = post_json,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Try up to ``attempts`` times with exponential backoff; return the delivery record."""
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            post(target.endpoint(), target.body(alert))
            return record(alert, target, attempt, "delivered", "")
        except (urllib.error.URLError, OSError, RuntimeError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            if attempt < attempts:
                sleep(base_delay * 2 ** (attempt - 1))
    return record(alert, target, attempts, "failed", error)


def record(alert: dict[str, Any], target: Target, attempts: int, status: str, error: str) -> dict[str, Any]:
    return {
        "alert_id": ident(alert),
        "channel": target.channel,
        "status": status,
        "attempts": attempts,
        "last_error": error,
        "finished_at": now_iso(),
    }
