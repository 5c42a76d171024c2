"""Downloads named after what a user typed (a hospital's Chinese name) are valid headers."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.responses import Response

from pipeline.api.app import attachment


def test_a_chinese_or_hostile_name_gives_a_latin1_header_that_names_the_file() -> None:
    for name in ("tender-evidence-北京协和医院", 'x"\r\nSet-Cookie: a=b', "\U000bb5ea"):
        headers = attachment(name, "csv")
        Response(b"", headers=headers)  # a header that is not latin-1 made the API answer 500
        value = headers["Content-Disposition"]
        assert "\r" not in value and "\n" not in value
        assert unquote(value.split("filename*=UTF-8''", 1)[1]) == f"{name}.csv"
