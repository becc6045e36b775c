"""The access log never holds a confirmation link's token."""

from __future__ import annotations

import logging
import logging.config

from form_service.logs import REDACTED, RedactTokens, redact, uvicorn_log_config


def test_tokens_are_taken_out_of_paths() -> None:
    assert redact("/request/verify/eyJyZWYiOiJQTy0.aw.sig") == f"/request/verify/{REDACTED}"
    assert redact("/en/request/sent/abc.def.ghi?x=1") == f"/en/request/sent/{REDACTED}?x=1"
    assert redact("/en/request/?type=access&v=1.0") == "/en/request/?type=access&v=1.0"
    assert redact("/versions/1.0/") == "/versions/1.0/"


def test_the_filter_rewrites_uvicorns_access_record() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/request/verify/secret.token.sig",
                                "1.1", 200), None)
    assert RedactTokens().filter(record)
    assert "secret" not in record.getMessage()
    assert f"/request/verify/{REDACTED}" in record.getMessage()


def test_serves_log_config_puts_the_filter_on_the_access_log() -> None:
    config = uvicorn_log_config()
    assert config["handlers"]["access"]["filters"] == ["redact_tokens"]
    logging.config.dictConfig(config)  # the config is one dictConfig accepts
