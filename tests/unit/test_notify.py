"""Robot delivery against a real local HTTP server (no Kafka needed)."""

import base64
import hashlib
import hmac
import urllib.parse

from pipeline.infra.notify import Target, deliver, dingtalk_signed_url
from tests.robot_server import robot

ALERT = {
    "alert_id": "a1",
    "customer_id": "C-B00017",
    "rule_id": "silent_key_contact",
    "severity": "high",
    "title": "重点联系人连续7天未打开产品资料，且最近3次回复均超过48小时",
    "score": 31.5,
    "band": "at_risk",
    "assignee": "CS-02",
    "status": "open",
    "raised_at": "2026-11-20T04:00:00.000+00:00",
}
OK = (200, {"errcode": 0, "errmsg": "ok"})


def test_wecom_delivery_retries_until_the_robot_accepts() -> None:
    with robot([(500, {}), (503, {}), OK]) as (url, received):
        rec = deliver(ALERT, Target("wecom", url), attempts=5, base_delay=0.01)
    assert rec["status"] == "delivered" and rec["attempts"] == 3
    assert len(received) == 3
    body = received[-1]["body"]
    assert body["msgtype"] == "markdown"
    assert "重点联系人连续7天未打开产品资料" in body["markdown"]["content"]
    assert "负责人：CS-02" in body["markdown"]["content"]


def test_a_robot_that_keeps_refusing_yields_a_kept_failure_record() -> None:
    with robot([(200, {"errcode": 310000, "errmsg": "keywords not in content"})]) as (url, received):
        rec = deliver(ALERT, Target("dingtalk", url), attempts=3, base_delay=0.01)
    assert rec["status"] == "failed" and rec["attempts"] == 3 and len(received) == 3
    assert "310000" in rec["last_error"]
    assert received[0]["body"]["markdown"]["title"].startswith("重点联系人")


def test_dingtalk_signature_matches_the_documented_scheme() -> None:
    url = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=x", "SECabc", now_ms=1700000000000)
    q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    expected = base64.b64encode(hmac.new(b"SECabc", b"1700000000000\nSECabc", hashlib.sha256).digest()).decode()
    assert q["timestamp"] == ["1700000000000"] and q["sign"] == [expected] and q["access_token"] == ["x"]
