"""The console's answer upload: a multipart body read as it arrives, each file sealed
on the fly (answer_files.Sealing), so that no file is ever whole in memory or in
clear on disk (python-multipart's own parser would spool it to a temporary file).

Text fields are UTF-8 and short; a file part must have a file name of a type an
answer may carry. Whatever goes wrong, the files sealed so far are deleted.
"""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request

from form_service.answer_files import MAX_FILES, AnswerFileError, Sealing, StoredFile, discard
from form_service.customer.formdata import PartHeaders, utf8_text
from form_service.settings import Settings, SettingsError
from form_service.web.errors import BadRequest, WebError

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 20


class _Upload(PartHeaders):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.fields: list[tuple[str, str]] = []
        self.files: list[StoredFile] = []
        self._data = bytearray()
        self._field: str | None = None
        self._sealing: Sealing | None = None

    def on_part_begin(self) -> None:
        self._headers, self._data, self._field, self._sealing = {}, bytearray(), None, None

    def on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in disposition:
            raise BadRequest("a part without a name")
        self._field = utf8_text(disposition[b"name"])
        filename = disposition.get(b"filename")
        if filename is not None and filename.strip():
            if len(self.files) >= MAX_FILES:
                raise AnswerFileError(f"an answer carries at most {MAX_FILES} files",
                                      "too_many")
            self._sealing = Sealing(self.settings, utf8_text(filename))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sealing is not None:
            self._sealing.write(data[start:end])
            return
        self._data += data[start:end]
        if len(self._data) > MAX_FIELD_BYTES:
            raise BadRequest("a field too long")

    def on_part_end(self) -> None:
        if self._sealing is not None:
            self.files.append(self._sealing.finish())  # finish() aborts itself on failure
            self._sealing = None
            return
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"filename" in disposition:
            return  # an empty file input: the browser sends a part without a name or bytes
        if len(self.fields) >= MAX_FIELDS:
            raise BadRequest("too many fields")
        assert self._field is not None
        self.fields.append((self._field, utf8_text(bytes(self._data))))

    def abort(self) -> None:
        if self._sealing is not None:
            self._sealing.abort()
        discard(self.settings, self.files)


async def read_upload(request: Request, settings: Settings
                      ) -> tuple[ImmutableMultiDict[str, str], list[StoredFile]]:
    """The fields and the sealed files of a multipart body; BadRequest or AnswerFileError."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise BadRequest("not a multipart body")
    upload = _Upload(settings)
    callbacks = {name: getattr(upload, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished", "on_part_data", "on_part_end")}
    try:
        parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (WebError, AnswerFileError, SettingsError):
        upload.abort()
        raise
    except BaseException as exc:
        upload.abort()
        if isinstance(exc, Exception) and not isinstance(exc, OSError):
            raise BadRequest("malformed multipart body") from None
        raise
    return ImmutableMultiDict(upload.fields), upload.files
