"""Reading a submitted form's fields: UTF-8, and nothing but text.

Starlette's parser reads the raw bytes of an urlencoded body as Latin-1
("José" sent unencoded becomes "JosÃ©") and decodes a multipart part in any
charset it names, falling back to Latin-1. A form we serve is UTF-8 (the page
says so), so a body in anything else was not sent by our page: it is refused
with the 400 page rather than stored as mojibake, and a part declaring another
charset (UTF-7 is the classic way to smuggle markup past filters) is refused
too. Files are refused: the form has no file field.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request

from form_service.web.errors import BadRequest

# A browser sends the form's eight fields (and a button); far more is not a person.
MAX_FIELDS = 50
_UTF8 = {"utf-8", "utf8", "us-ascii", "ascii"}


def _charset_ok(params: dict[bytes, bytes]) -> bool:
    charset = params.get(b"charset")
    return charset is None or charset.decode("latin-1").strip().lower() in _UTF8


def utf8_text(data: bytes | bytearray) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("not UTF-8") from None


async def read_form(request: Request) -> ImmutableMultiDict[str, str]:
    """The form's fields as text; BadRequest for a body our page could not have sent."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type not in (b"application/x-www-form-urlencoded", b"multipart/form-data"):
        # Nothing to read: the CSRF check that follows refuses it in plain words.
        return ImmutableMultiDict()
    if not _charset_ok(params):
        raise BadRequest("a charset other than UTF-8")
    # The whole body: BodyLimit (security.py) stops it at 64 KiB.
    body = await request.body()
    if content_type == b"multipart/form-data":
        return ImmutableMultiDict(_multipart(body, params.get(b"boundary", b"")))
    try:
        pairs = parse_qsl(utf8_text(body), keep_blank_values=True, encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        # %-escapes that are not UTF-8, or too many fields.
        raise BadRequest("undecodable or too many fields") from None
    return ImmutableMultiDict(pairs)


class PartHeaders:
    """python-multipart's header callbacks: each part's headers, names in lower case
    (also the console's upload, staff/uploads.py). on_part_begin resets _headers."""

    def __init__(self) -> None:
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.strip().lower()] = self._value.strip()
        self._name, self._value = b"", b""


class _Parts(PartHeaders):
    """Collects the parts of a multipart body: name, headers and bytes of each."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str]] = []
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._headers, self._data = {}, bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def on_part_end(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in disposition:
            raise BadRequest("a part without a name")
        if b"filename" in disposition:
            raise BadRequest("a file")
        _, part_params = parse_options_header(self._headers.get(b"content-type", b""))
        if not _charset_ok(part_params):
            raise BadRequest("a part in a charset other than UTF-8")
        if len(self.items) >= MAX_FIELDS:
            raise BadRequest("too many fields")
        self.items.append((utf8_text(disposition[b"name"]), utf8_text(self._data)))


def _multipart(body: bytes, boundary: bytes) -> list[tuple[str, str]]:
    if not boundary:
        raise BadRequest("multipart without a boundary")
    parts = _Parts()
    callbacks = {name: getattr(parts, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
        "on_part_data", "on_part_end")}
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except BadRequest:
        raise
    except Exception:  # python-multipart's errors on a malformed body
        raise BadRequest("malformed multipart body") from None
    return parts.items
