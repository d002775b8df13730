"""`POST /api/v1/usage` (DESIGN.md): product usage rows, JSON `{"rows": [...]}` or NDJSON
(`Content-Type: application/x-ndjson`, one row a line). Token (read-write) or session.

Idempotent by (account, period, metric). The rows the caller may write are those of the
accounts they may see (`accounts_for_user`: an admin's integration user, all). Answer:
`{"accepted", "unchanged", "created", "updated", "rejected": [{"index", "errors"}],
"rejected_count", "run"}`; 200 when at least the valid rows were stored, 400 when the body
is not a batch of rows or every row was rejected (each rejected row is quarantined too)."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import SafeJSONParser, read_body
from portfolio.api_tokens import WriteScopeRequired
from portfolio.selectors import accounts_for_user
from usage import services

MAX_ROWS = 10_000


class NDJSONParser(BaseParser):
    """One JSON object a line, read as the staged rows (a bad line is a rejected row)."""

    media_type = "application/x-ndjson"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> dict[str, list]:
        data = read_body(stream, parser_context)
        # Lines are numbered from 0, as a JSON batch's rows are.
        return {"ndjson": list(services.staged_from_ndjson(data.splitlines()))}


def _staged(data: Any) -> list:
    if isinstance(data, dict) and "ndjson" in data:
        return [(row[0] - 1, *row[1:]) for row in data["ndjson"]]
    if not isinstance(data, dict) or set(data) - {"rows"}:
        raise ParseError({"rows": ['Send {"rows": [...]} or NDJSON (application/x-ndjson).']})
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise ParseError({"rows": ["Must be a list of rows."]})
    return [services.staged_from_record(i, r) for i, r in enumerate(rows)]


@api_view(["POST"])
@parser_classes([SafeJSONParser, NDJSONParser])
@permission_classes([IsAuthenticated, WriteScopeRequired])
def usage_post(request: Request) -> Response:
    staged = _staged(request.data)
    if not staged:
        return Response({"rows": ["No rows."]}, status=status.HTTP_400_BAD_REQUEST)
    if len(staged) > MAX_ROWS:
        return Response(
            {"rows": [f"{len(staged):,} rows; send at most {MAX_ROWS:,} a request."]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    result = services.usage_import(
        rows=staged,
        trigger="api",
        scope=accounts_for_user(request.user),
        details={"user": request.user.get_username()},
    )
    body = {
        "accepted": result.accepted,
        "unchanged": result.unchanged,
        "created": result.created,
        "updated": result.updated,
        "rejected": result.rejected,
        "rejected_count": result.rejected_count,
        "run": result.run.pk,
    }
    ok = result.accepted > 0
    return Response(body, status=status.HTTP_200_OK if ok else status.HTTP_400_BAD_REQUEST)
