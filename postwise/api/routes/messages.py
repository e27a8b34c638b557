"""``POST /v1/messages``: submit a message for delivery, translated into one
:meth:`~postwise.outbound.submission.Submitter.submit` call.

Three shapes of request:

- JSON with a raw message: ``{"from": ..., "to": [...], "raw": "<RFC 822 text>"}``;
- JSON with a structured message: ``{"from", "to", "subject", "text", "html"?, "headers"?}``,
  composed here into RFC 822 (this is wire translation: the submitter still checks, completes,
  signs and queues it as any other submission);
- ``Content-Type: message/rfc822`` with the envelope in the query (``?from=...&to=...``).

All take ``pool``, ``envelope_id`` and an idempotency key (the ``Idempotency-Key`` header, or
the ``idempotency_key`` field or parameter).
"""

from __future__ import annotations

import email.policy
import json
from email.message import EmailMessage
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from postwise.api.dependencies import get_outbound, read_message_body
from postwise.outbound.submission import Accepted, SubmissionError
from postwise.services import OutboundServices

router = APIRouter(prefix="/v1", tags=["messages"])

# JSON escapes make a message's text longer than its bytes; the submitter checks the message's
# own size against max_message_bytes.
_JSON_OVERHEAD = 2


def _utf8(value: Any) -> Any:
    """Refuses strings that cannot be stored as UTF-8 (lone surrogates from JSON escapes)."""
    texts = value if isinstance(value, list) else [value]
    if isinstance(value, dict):
        texts = [*value.keys(), *value.values()]
    for text in texts:
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("not valid Unicode text (a lone surrogate)") from None
    return value


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mail_from: str = Field(
        alias="from", max_length=998, description="envelope sender; '' for the null sender"
    )
    to: list[str] = Field(min_length=1, description="envelope recipients")
    pool: str = Field("default", max_length=64, description="egress pool to send through")
    envelope_id: str | None = Field(
        None, max_length=100, description="RFC 3461 ENVID kept for DSNs"
    )
    idempotency_key: str | None = Field(
        None, max_length=255, description="or the Idempotency-Key header"
    )

    @field_validator("*")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _utf8(value)


class RawSubmission(_Envelope):
    """An envelope and the message as RFC 822 text."""

    raw: str = Field(min_length=1, description="the RFC 822 message (headers, blank line, body)")


class ComposedSubmission(_Envelope):
    """An envelope and the parts of a message Postwise composes (From header = ``from``
    unless ``headers`` gives one; To header = the recipients unless given)."""

    subject: str = Field(max_length=998)
    text: str
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def _invalid(error: ValidationError, where: str = "body") -> RequestValidationError:
    errors = error.errors(include_url=False, include_context=False)
    return RequestValidationError(
        [{**e, "loc": (where, *e["loc"]), "input": _printable(e.get("input"))} for e in errors]
    )


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), though Python's parser takes them."""
    raise ValueError(f"{name} is not a JSON value")


def _printable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)[:200]
    return value


def _compose(message: ComposedSubmission) -> bytes:
    """The structured message as RFC 822 bytes; 422 naming what cannot go in a header."""
    composed = EmailMessage(policy=email.policy.SMTP)
    given = {name.lower() for name in message.headers}
    try:
        for name, value in message.headers.items():
            if not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
                raise ValueError(f"header name {name!r}: printable ASCII without ':'")
            if name.lower() in ("content-type", "content-transfer-encoding", "mime-version"):
                raise ValueError(f"header {name!r} is set by composition; use text and html")
            composed[name] = value
        if "from" not in given:
            composed["From"] = message.mail_from
        if "to" not in given:
            composed["To"] = ", ".join(message.to)
        if "subject" not in given:
            composed["Subject"] = message.subject
        composed.set_content(message.text)
        if message.html is not None:
            composed.add_alternative(message.html, subtype="html")
        return composed.as_bytes()
    except Exception as error:  # the email package raises many kinds on odd header values
        raise HTTPException(422, {"error": f"cannot compose the message: {error}"}) from None


def _refused(error: SubmissionError) -> HTTPException:
    """5xx: the request must change (422; 413 for size); 4xx: a retry may work (503),
    except too many recipients, which only splitting the list fixes (422)."""
    if error.code.startswith("552"):
        status = 413
    elif error.code.startswith("5") or error.code.startswith("452"):
        status = 422
    else:
        status = 503
    return HTTPException(status, {"error": str(error), "smtp_code": error.code})


async def _submit(
    outbound: OutboundServices,
    request: Request,
    envelope: _Envelope,
    raw: bytes,
    idempotency_key: str | None,
) -> JSONResponse:
    client = request.client.host if request.client else "unknown"
    try:
        accepted: Accepted = await run_in_threadpool(
            outbound.submit,
            envelope.mail_from,
            list(envelope.to),
            raw,
            source="api",
            submitted_by=f"api:{client}",
            idempotency_key=idempotency_key or envelope.idempotency_key,
            pool=envelope.pool,
            envelope_id=envelope.envelope_id,
        )
    except SubmissionError as error:
        raise _refused(error) from None
    except OSError as error:
        raise HTTPException(503, {"error": f"the spool refused the message: {error}"}) from None
    status = 200 if accepted.enqueued.duplicate else 202
    return JSONResponse(accepted.to_json(), status_code=status)


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        RawSubmission.model_json_schema(by_alias=True),
                        ComposedSubmission.model_json_schema(by_alias=True),
                    ]
                }
            },
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/messages",
    status_code=202,
    openapi_extra=_BODY,
    responses={
        200: {"description": "a submission with this idempotency key was queued before"},
        413: {"description": "the message is over max_message_bytes"},
        422: {"description": "invalid request, or the message or every recipient refused"},
        503: {"description": "temporarily refused: retry later"},
    },
)
async def submit_message(
    request: Request,
    mail_from: str | None = Query(None, alias="from", description="message/rfc822 bodies"),
    to: list[str] | None = Query(None, description="message/rfc822 bodies: each recipient"),
    pool: str = Query("default", max_length=64),
    envelope_id: str | None = Query(None, max_length=100),
    idempotency_key: str | None = Query(None, max_length=255),
    idempotency_header: str | None = Header(None, alias="Idempotency-Key", max_length=255),
    outbound: OutboundServices = Depends(get_outbound),
) -> JSONResponse:
    """Queue a message for delivery. 202 with ``{id, duplicate, recipients, refused}``
    (suppressed recipients are refused, each with its reason, and the others queued); 200
    when the idempotency key was seen before (nothing is queued again)."""
    limit = outbound.settings.max_message_bytes
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    key = idempotency_header or idempotency_key
    if content_type == "message/rfc822":
        raw = await read_message_body(request, limit)
        try:
            envelope = _Envelope.model_validate(
                {"from": mail_from if mail_from is not None else "", "to": to or [], "pool": pool}
                | {"envelope_id": envelope_id}
            )
        except ValidationError as error:
            raise _invalid(error, "query") from None
        if mail_from is None:
            raise HTTPException(422, {"error": "message/rfc822 bodies need ?from=<sender>"})
        return await _submit(outbound, request, envelope, raw, key)
    try:
        body = await read_message_body(request, limit * _JSON_OVERHEAD + 65536)
    except HTTPException as error:
        if error.status_code != 400:
            raise
        raise HTTPException(422, {"error": "empty body: send a JSON object"}) from None
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise HTTPException(
            422,
            {
                "error": f"the body is not JSON ({error}); send a JSON object, or the raw "
                "message with Content-Type: message/rfc822"
            },
        ) from None
    if not isinstance(data, dict):
        raise HTTPException(422, {"error": "the body must be a JSON object"})
    try:
        message: RawSubmission | ComposedSubmission
        if "raw" in data:
            message = RawSubmission.model_validate(data)
        else:
            message = ComposedSubmission.model_validate(data)
    except ValidationError as error:
        raise _invalid(error) from None
    raw = message.raw.encode("utf-8") if isinstance(message, RawSubmission) else _compose(message)
    return await _submit(outbound, request, message, raw, key)
