"""What every API endpoint shares: bodies parsed safely, and errors as JSON.

Crafted bodies must never give a 500 or Django's HTML error page (issue 13): a body over
`API_MAX_BODY_BYTES` is a JSON 413, JSON nested deeper than Python's parser can go (100,000
`[`) is a JSON 400, and any other 400/413 Django answers under /api/ is made JSON."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


def read_body(stream: Any, parser_context: dict | None) -> bytes:
    """The request body, refused with a JSON 413 past `API_MAX_BODY_BYTES` (every parser)."""
    request = (parser_context or {}).get("request")
    limit = settings.API_MAX_BODY_BYTES
    length = int((request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0)
    if length > limit:
        raise BodyTooLarge(f"body: {length:,} bytes; the API takes at most {limit:,}.")
    return stream.read() if stream is not None else b""


class SafeJSONParser(JSONParser):
    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> Any:
        data = read_body(stream, parser_context)
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:
            field = _deepest_field(data) or "body"
            raise ParseError(f"{field}: JSON nested too deeply to read.") from None


def _deepest_field(data: bytes, limit: int = 100) -> str | None:
    """The top-level key whose value nests past `limit` levels (None: the body itself), to
    name the field in the error. One pass over the bytes, minding strings and escapes."""
    depth, key, last_string, in_string, escaped = 0, None, b"", False, False
    start = 0
    for i, byte in enumerate(data):
        char = bytes((byte,))
        if in_string:
            if escaped:
                escaped = False
            elif char == b"\\":
                escaped = True
            elif char == b'"':
                in_string, last_string = False, data[start:i]
            continue
        if char == b'"':
            in_string, start = True, i + 1
        elif char == b":" and depth == 1:
            key = last_string.decode("utf-8", "replace")
        elif char in (b"{", b"["):
            depth += 1
            if depth > limit:
                return key if data.lstrip()[:1] == b"{" else None
        elif char in (b"}", b"]"):
            depth -= 1
    return None


class JSONErrorsMiddleware:
    """Under /api/, a 400 or 413 that Django itself answered with HTML (a body too large
    for DATA_UPLOAD_MAX_MEMORY_SIZE, a bad Host) becomes JSON with the same status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code in (400, 413)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            text = response.content.decode("utf-8", "replace").strip()[:200]
            detail = "Bad request" if text.startswith("<") or not text else text
            return JsonResponse({"detail": detail}, status=response.status_code)
        return response
