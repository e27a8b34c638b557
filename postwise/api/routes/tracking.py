"""Tracking endpoints on the API server: ``/t/c/{token}`` (click redirect), ``/t/o/{token}``
(open pixel, ``.gif`` optional) and ``/t/u/{token}`` (one-click unsubscribe, RFC 8058).

They only translate: verify the token, hand it to :class:`TrackingRecorder`, reply. A bad
token gets a 400 page and never a redirect; the redirect target comes only from the signed
token. No endpoint sets cookies or stores the client address."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from postwise.api.routes.engage import get_contact_store
from postwise.engage.tracking import (
    PIXEL_GIF,
    Kind,
    Tracker,
    TrackingClaims,
    TrackingError,
    TrackingRecorder,
)

router = APIRouter(prefix="/t", tags=["tracking"])

MAX_UNSUBSCRIBE_BODY = 16 * 1024
_NO_STORE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
</style></head><body><h1>{title}</h1>{body}</body></html>
"""


def get_tracker(request: Request) -> Tracker:
    """The app's tracker (token key from the engage key), built on first use."""
    tracker: Tracker | None = getattr(request.app.state, "tracker", None)
    if tracker is None:
        tracker = Tracker.from_settings(request.app.state.settings)
        request.app.state.tracker = tracker
    return tracker


def get_recorder(request: Request) -> TrackingRecorder:
    """The app's recorder over its contact store; same consent rule as the tracker."""
    recorder: TrackingRecorder | None = getattr(request.app.state, "tracking_recorder", None)
    if recorder is None:
        recorder = TrackingRecorder(
            get_contact_store(request), consent_rule=get_tracker(request).consent_rule
        )
        request.app.state.tracking_recorder = recorder
    return recorder


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=escape(title), body=body), status_code=status, headers=_PAGE_HEADERS
    )


def _bad_token(error: TrackingError) -> HTMLResponse:
    return _page(
        "Link not valid",
        "<p>This link is damaged or was not issued by this server, so it leads nowhere. "
        "If you copied it from a message, copy the whole link.</p>"
        f"<!-- {escape(str(error)).replace('--', '- -')} -->",
        status=400,
    )


def _verify(request: Request, token: str, kind: Kind) -> TrackingClaims | HTMLResponse:
    try:
        return get_tracker(request).verify(token, kind)
    except TrackingError as error:
        return _bad_token(error)


def _location(url: str) -> str:
    # The URL is sent exactly as signed; only what a header cannot carry (non-ASCII) is
    # percent-encoded as UTF-8. Signing refused whitespace and control characters.
    return "".join(ch if ch.isascii() else quote(ch, safe="") for ch in url)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# HEAD shares each handler but stays out of the OpenAPI schema (one operation id per route).
@router.head("/c/{token}", response_class=Response, include_in_schema=False)
@router.get("/c/{token}", response_class=Response)
async def click(token: str, request: Request) -> Response:
    """Redirect (302) to the link in the token and record a ``click`` event (not for a
    contact without tracking consent). 400 for a bad token."""
    claims = _verify(request, token, "click")
    if isinstance(claims, HTMLResponse):
        return claims
    assert claims.url is not None
    await run_in_threadpool(
        get_recorder(request).record_click,
        token,
        claims,
        request.headers.get("user-agent", ""),
        request.method,
        _client(request),
    )
    return Response(status_code=302, headers={**_NO_STORE, "Location": _location(claims.url)})


@router.head("/o/{token}", response_class=Response, include_in_schema=False)
@router.get("/o/{token}", response_class=Response)
async def open_pixel(token: str, request: Request) -> Response:
    """A 1x1 transparent GIF; records an ``open`` event flagged ``machine`` when a proxy,
    prefetcher or scanner fetched it. 400 for a bad token."""
    token = token.removesuffix(".gif")
    claims = _verify(request, token, "open")
    if isinstance(claims, HTMLResponse):
        return claims
    await run_in_threadpool(
        get_recorder(request).record_open,
        token,
        claims,
        request.headers.get("user-agent", ""),
        request.method,
        _client(request),
    )
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_form(token: str, request: Request) -> HTMLResponse:
    """A confirmation page with a POST form. GET never unsubscribes: link scanners follow
    every GET."""
    claims = _verify(request, token, "unsubscribe")
    if isinstance(claims, HTMLResponse):
        return claims
    return _page(
        "Unsubscribe",
        "<p>Stop receiving these messages?</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UNSUBSCRIBE_BODY:
            break  # the token authorises the request; a huge body is not read further
        chunks.append(chunk)
    return b"".join(chunks)


def _is_one_click(content_type: str, body: bytes) -> bool:
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", "replace"))
        return "One-Click" in fields.get("List-Unsubscribe", [])
    # multipart/form-data (RFC 8058 allows it) or anything else: look for the field itself.
    return b'name="List-Unsubscribe"' in body and b"One-Click" in body


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """Unsubscribe: RFC 8058 one-click (``List-Unsubscribe=One-Click``) or the form. Records
    one ``unsubscribe`` event per token, which withdraws marketing consent; 200 either way
    (again on a repeat). 400 for a bad token."""
    claims = _verify(request, token, "unsubscribe")
    if isinstance(claims, HTMLResponse):
        return claims
    body = await _read_body(request)
    one_click = _is_one_click(request.headers.get("content-type", "").lower(), body)
    await run_in_threadpool(get_recorder(request).record_unsubscribe, token, claims, one_click)
    return _page("Unsubscribed", "<p>You will not receive these messages any more.</p>")
