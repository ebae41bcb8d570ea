"""Logs without patient data or secrets.

Search terms (a name, a date of birth) travel in query strings and the patient's
questionnaire token in the path (``/q/<token>/``). The access log therefore records the
path only, never the query string, with anything that looks like a token replaced; the
referrer gets the same treatment. Django's own log lines pass through the same filter.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
# The questionnaire link, and any path segment that looks like a random token: 20 or more
# URL-safe characters mixing letters and digits (ids, slugs and dates do not).
_LINK = re.compile(r"(/q/)[^/?#\s]+")
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])"
                    r"[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])")
_QUERY = re.compile(r"\?[^\s\"]*")


def redact(text: str) -> str:
    """``text`` with query strings dropped and tokens in paths replaced."""
    text = _QUERY.sub("", text)
    text = _LINK.sub(rf"\g<1>{REDACTED}", text)
    return _TOKEN.sub(REDACTED, text)


class RedactingLogger(Logger):
    """gunicorn's logger, with the request line, path, query and referrer redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
              ) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        path = redact(str(environ.get("PATH_INFO", "")))
        atoms["r"] = f"{environ.get('REQUEST_METHOD', '-')} {path} " \
                     f"{environ.get('SERVER_PROTOCOL', '-')}"
        atoms["U"] = path
        atoms["q"] = ""
        atoms["f"] = redact(str(environ.get("HTTP_REFERER", "-")))
        for name in list(atoms):  # the raw environ and headers, should a format ask
            if name.endswith(("}e", "}i")):
                atoms[name] = "-"
        return atoms


class RedactSecrets(logging.Filter):
    """A logging filter: the same redaction on every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
