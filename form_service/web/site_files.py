"""The built policy site as the service serves it: precompressed, with cache lifetimes."""

from __future__ import annotations

import mimetypes
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from site_config.precompress import ENCODINGS, TEXT_SUFFIXES

_SERVICE_LAYOUT = re.compile(r"^(?:[a-z]{2,3}/)?request/")


class SiteFiles(StaticFiles):
    """The built policy site; a missing file raises 404 so that our 404 page answers
    (StaticFiles would otherwise serve the site's 404.html, in one language only).

    A text file goes out as its brotli or gzip copy (written by the build) when the
    browser accepts one (RFC 9110 §12.5.3), with `Vary: Accept-Encoding`. Assets whose
    names carry their content's hash are cached for a year and never revalidated;
    everything else for five minutes and then revalidated, so a new build is seen soon
    (the same headers as deploy/Caddyfile)."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path.endswith("404.html") or _SERVICE_LAYOUT.match(path):
            # The layout of the service's pages (<lang>/request/index.html) is the
            # service's to fill in, never a page of its own.
            return "", None
        return super().lookup_path(path)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        location = response.headers.get("location")
        if location is not None:
            # "/versions" -> "/versions/": StaticFiles writes the whole URL, with the
            # Host header the client chose; a relative address cannot point elsewhere.
            parts = urlsplit(location)
            response.headers["location"] = parts.path + (f"?{parts.query}" if parts.query else "")
        return response

    def file_response(self, full_path: Any, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        name = str(full_path)
        variant = precompressed_variant(name, Headers(scope=scope).get("accept-encoding", ""))
        if variant is None:
            response = super().file_response(full_path, stat_result, scope, status_code)
            if name.endswith(".gz"):
                # sitemap.xml.gz is a gzip file to download, not XML sent compressed.
                response.headers["content-type"] = "application/gzip"
        else:
            encoding, encoded = variant
            response = super().file_response(encoded, os.stat(encoded), scope, status_code)
            response.headers["content-encoding"] = encoding
            response.headers["content-type"] = mimetypes.guess_type(name)[0] or "text/plain"
        if name.endswith(".xml") and Path(name).stem == "feed":
            # RFC 4287 §7: an Atom document's media type.
            response.headers["content-type"] = "application/atom+xml"
        if name.endswith(TEXT_SUFFIXES):
            response.headers["vary"] = "Accept-Encoding"
        response.headers["cache-control"] = cache_control(name)
        return response


# Material's assets name their content's hash: main.57a0d79d.min.css, bundle.a5f9d56c.min.js.
_FINGERPRINTED = re.compile(r"\.[0-9a-f]{8}\.min\.(?:css|js)$")


def cache_control(name: str) -> str:
    if _FINGERPRINTED.search(name):
        # A new release of an asset is a new name: the old one never changes.
        return "public, max-age=31536000, immutable"
    return "public, max-age=300, must-revalidate"


def precompressed_variant(name: str, accept_encoding: str) -> tuple[str, str] | None:
    """The brotli or gzip copy of a text file that the client accepts and the build wrote."""
    if not name.endswith(TEXT_SUFFIXES):
        return None
    accepted = _accepted_encodings(accept_encoding)
    for encoding, suffix in ENCODINGS:
        if encoding in accepted and os.path.isfile(name + suffix):
            return encoding, name + suffix
    return None


def _accepted_encodings(header: str) -> set[str]:
    """Codings with a weight above 0 (RFC 9110 §12.5.3); "*" accepts any not named."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        key, _, value = params.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        if coding.strip():
            weights[coding.strip().lower()] = quality
    star = weights.get("*", 0.0)
    return {coding for coding, _ in ENCODINGS if weights.get(coding, star) > 0}


