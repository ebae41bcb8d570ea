"""gunicorn inside the ``serve`` (and ``demo``) process.

The command itself becomes gunicorn's arbiter instead of wrapping it in a child process:
a SIGTERM or Ctrl-C to ``ketamine-clinic serve`` stops the arbiter, which stops its
workers and closes the listening socket. (A wrapper stopped by SIGTERM used to leave the
child gunicorn serving.)
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class ClinicServer(BaseApplication):
    """gunicorn's application with the clinic's settings and WSGI entry point."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from ketamine_clinic.web.wsgi import application

        return application


def serve(*, host: str, port: int, workers: int) -> int:
    """Serve until stopped (SIGTERM, SIGINT); returns gunicorn's exit status."""
    from django.db import connections

    connections.close_all()  # the workers fork from this process: they share no connection
    server = ClinicServer({
        "bind": f"{host}:{port}", "workers": workers, "threads": 4,
        "accesslog": "-", "graceful_timeout": 10,
        # paths without query strings or tokens (docs/audit.md, "Logs")
        "logger_class": "ketamine_clinic.web.lib.logs.RedactingLogger",
    })
    try:
        server.run()  # the arbiter ends with sys.exit(status)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0
    return 0
