"""The built site as `policy-site serve` sends it: precompressed copies and cache lifetimes."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from starlette.testclient import TestClient
from web_support import built_site, client_for, make_settings

from form_service.web.site_files import cache_control


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(make_settings(tmp_path)) as client:
        yield client


def _raw(client: TestClient, path: str, accept: str) -> tuple[dict[str, str], bytes]:
    """The response's headers and its bytes as they came over the wire (not decoded)."""
    with client.stream("GET", path, headers={"Accept-Encoding": accept}) as response:
        assert response.status_code == 200, path
        return dict(response.headers), b"".join(response.iter_raw())


def _stylesheet(client: TestClient) -> str:
    found = re.search(r'href="(/assets/stylesheets/main\.[0-9a-f]{8}\.min\.css)"',
                      client.get("/en/request/").text)
    assert found
    return found[1]


def test_brotli_is_sent_to_a_browser_that_accepts_it(client: TestClient) -> None:
    """With `Accept-Encoding: br, gzip` the page is the build's brotli copy, same type, and
    Vary names Accept-Encoding."""
    headers, body = _raw(client, "/en/", "gzip, deflate, br")
    original = (built_site() / "en" / "index.html").read_bytes()
    assert headers["content-encoding"] == "br"
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["vary"] == "Accept-Encoding"
    assert brotli.decompress(body) == original and len(body) < len(original) / 3


def test_gzip_when_brotli_is_not_accepted(client: TestClient) -> None:
    """`gzip` alone, or brotli refused with q=0, gets the gzip copy."""
    for accept in ("gzip", "br;q=0, gzip;q=0.5"):
        headers, body = _raw(client, "/versions/", accept)
        assert headers["content-encoding"] == "gzip", accept
        assert gzip.decompress(body) == (built_site() / "versions" / "index.html").read_bytes()


def test_no_encoding_without_accept_encoding(client: TestClient) -> None:
    """A client that accepts no coding gets the file as it is."""
    headers, body = _raw(client, "/feed.xml", "identity")
    assert "content-encoding" not in headers
    assert body == (built_site() / "feed.xml").read_bytes()


def test_fingerprinted_assets_are_immutable_and_pages_revalidate(client: TestClient) -> None:
    """Material's hashed stylesheet is cached for a year, immutable; a page for five minutes,
    then revalidated (so a new build shows soon)."""
    headers, _ = _raw(client, _stylesheet(client), "br")
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-encoding"] == "br" and headers["content-type"].startswith("text/css")
    for path in ("/", "/assets/stylesheets/policy.css", "/versions.json"):
        headers, _ = _raw(client, path, "br")
        assert headers["cache-control"] == "public, max-age=300, must-revalidate", path
    assert cache_control("bundle.a5f9d56c.min.js") == "public, max-age=31536000, immutable"


def test_the_feeds_are_atom(client: TestClient) -> None:
    """Both feeds go out as application/atom+xml (RFC 4287 §7), compressed or not."""
    for path in ("/feed.xml", "/en/feed.xml"):
        for accept in ("br", ""):
            headers, _ = _raw(client, path, accept)
            assert headers["content-type"] == "application/atom+xml; charset=utf-8"


def test_the_layout_of_the_service_pages_is_not_a_page(client: TestClient) -> None:
    """The build's layout page under request/ is the service's to fill, never served as is."""
    for path in ("/request/index.html", "/en/request/index.html", "/request/index.html.br"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "@@policy-service" not in response.text
