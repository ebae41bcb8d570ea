"""Plotly's JavaScript (4.8 MB, shipped inside the plotly package) served as a static asset:
under a name with its content hash, compressed (Brotli and gzip), cached for a year.

``prepare_vendor_files()`` (run by ``migrate``/``serve``/``demo`` beside collectstatic) copies
the script into ``DATA_DIR/vendor`` as ``plotly.<hash>.min.js`` and compresses it with
whitenoise's compressor; :class:`VendorWhiteNoiseMiddleware` serves that folder at
``/vendor/`` (whitenoise picks the encoding the browser accepts, and marks hashed names
immutable). Until the files are prepared (a fresh test database), the ``plotly_js`` view
serves the same bytes uncompressed at the same URL.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

from ketamine_clinic.web.lib.compression import QuickCompressor

URL_PREFIX = "/vendor/"


@cache
def plotly_source() -> Path:
    """The installed plotly package's bundled ``plotly.min.js``."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@cache
def plotly_name() -> str:
    """``plotly.<first 12 hex digits of its SHA-256>.min.js``: a new plotly, a new URL."""
    digest = hashlib.sha256(plotly_source().read_bytes()).hexdigest()[:12]
    return f"plotly.{digest}.min.js"


def vendor_dir() -> Path:
    return Path(settings.DATA_DIR) / "vendor"


def prepare_vendor_files() -> Path:
    """Copy and compress the script into ``vendor_dir()`` once (a no-op when current).

    Processes that start at once (the server and its worker, two test runs over one data
    folder) take turns under a lock file beside the folder (in it, it would be served), so
    none reads or serves a half-written copy."""
    folder = vendor_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder.parent / ".vendor.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _prepare_in(folder)


def _prepare_in(folder: Path) -> Path:
    target = folder / plotly_name()
    if not target.exists():
        for old in folder.glob("plotly.*.min.js*"):
            old.unlink()
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(plotly_source(), tmp)
        tmp.replace(target)
    if not (target.with_name(target.name + ".br").exists()
            and target.with_name(target.name + ".gz").exists()):
        QuickCompressor(quiet=True).compress(str(target))
    return target


class VendorWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise for the static files, plus the prepared vendor folder at ``/vendor/``."""

    def __init__(self, get_response: Any = None, settings: Any = None) -> None:
        if settings is None:
            super().__init__(get_response)
        else:
            super().__init__(get_response, settings)
        self.vendor_url = URL_PREFIX + plotly_name()
        self.vendor_added = False
        self._add_vendor_files()

    def _add_vendor_files(self) -> None:
        if not self.vendor_added and (vendor_dir() / plotly_name()).exists():
            self.add_files(str(vendor_dir()), prefix=URL_PREFIX)
            self.vendor_added = True

    def __call__(self, request: Any) -> Any:
        if request.path_info == self.vendor_url and not self.vendor_added:
            self._add_vendor_files()  # prepared after this process started (tests)
        return super().__call__(request)

    def immutable_file_test(self, path: str, url: str) -> bool:
        if url == URL_PREFIX + plotly_name():  # the name carries the content's hash
            return True
        return bool(super().immutable_file_test(path, url))
