"""Middleware of the web shell: idle logoff that background polls do not postpone, and the
response headers every answer carries (:class:`SecurityHeadersMiddleware`).

Pages that refresh themselves (the chair board, the bedside page) poll the server every
few seconds. Each such request would otherwise renew the session (``SESSION_SAVE_EVERY_
REQUEST``) so that idle logoff never fires on a screen left open. ``static/js/app.js`` marks
requests nobody asked for (htmx requests without a triggering user event: ``every`` and
``load`` triggers) with the ``X-Background-Request`` header; for those the session is read
but not saved, so its expiry stays where the last real activity put it.

When the session has expired, a background (or any htmx) request that would be redirected
to the log-in page gets ``HX-Redirect`` instead, so the whole page goes to the log-in page
rather than the log-in form being swapped into a panel.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

BACKGROUND_HEADER = "X-Background-Request"


def is_background(request: HttpRequest) -> bool:
    """A request the page made by itself (a poll), not one a person asked for."""
    return bool(request.headers.get(BACKGROUND_HEADER))


class IdleSessionMiddleware(SessionMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (request.headers.get("HX-Request") and response.status_code == 302
                and response.get("Location", "").startswith(resolve_url(settings.LOGIN_URL))):
            redirect = HttpResponse(status=200)
            redirect["HX-Redirect"] = response["Location"]
            response = redirect
        session = getattr(request, "session", None)
        if is_background(request) and session is not None and not session.modified:
            return response  # read, not renewed: a poll is not activity
        return super().process_response(request, response)


# Browser features no page of the clinic uses, switched off for every page and frame.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "bluetooth", "camera", "display-capture", "geolocation",
    "gyroscope", "hid", "magnetometer", "microphone", "midi", "payment",
    "publickey-credentials-get", "serial", "usb", "xr-spatial-tracking"))


# Enforced on every page: scripts only from the app's own files (no other origin, no inline
# script or event handler, no eval: htmx runs with allowEval off, charts are JSON data drawn
# by static/js/app.js), nothing embedded, no form posting elsewhere, no framing.
#
# Styles keep 'unsafe-inline', on purpose: a style cannot run code, and the pages rely on
# inline styles the browser would otherwise refuse, with nothing to gain in safety: plotly
# writes style attributes on every chart element it draws, htmx adds its indicator style
# element, and the templates carry page-specific <style> blocks and style attributes
# (print layouts, the bedside grid). The script policy is what stops injected markup from
# running; an injected style can restyle a page but not read or send anything, since
# img-src, font-src and connect-src stay limited to the app itself.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:", "font-src 'self'", "connect-src 'self'",
    "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'"))


class SecurityHeadersMiddleware:
    """``Permissions-Policy`` on every answer, a Content Security Policy on every page;
    ``Cache-Control: no-store`` on every answer to a logged-in user or an API client
    (patient pages, API and FHIR answers must not stay in a browser's or a proxy's cache),
    unless the view set a cache policy of its own (the bundled plotly script is
    ``public``)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        user = getattr(request, "user", None)
        private = (bool(user is not None and user.is_authenticated)
                   or request.path.startswith(("/api/", "/fhir/"))
                   or "Authorization" in request.headers)
        if private and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
