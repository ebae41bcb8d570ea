"""How a product area (a Django app under ``ketamine_clinic.web``) plugs into the shell.

An area's ``AppConfig`` may define:

- ``nav``: ``[(label, url_name, capability_or_None), ...]`` for the top bar;
- ``patient_panels``: dotted paths of functions ``(request, patient) -> str`` returning an
  HTML section for the patient page (empty string to show nothing).

Its ``urls.py`` (``urlpatterns``) is included at the site root and its ``api.py``
(``router``) is mounted under ``/api/v1/`` automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from django.apps import AppConfig, apps
from django.utils.module_loading import import_string, module_has_submodule

PREFIX = "ketamine_clinic.web."


def area_configs() -> Iterator[AppConfig]:
    for config in apps.get_app_configs():
        if config.name.startswith(PREFIX):
            yield config


def area_modules(submodule: str) -> list[str]:
    """Dotted names of ``<area>.<submodule>`` for every area that has one."""
    return [f"{c.name}.{submodule}" for c in area_configs()
            if module_has_submodule(c.module, submodule)]


def nav_items() -> list[tuple[str, str, Any]]:
    return [item for c in area_configs() for item in getattr(c, "nav", [])]


@cache
def patient_panels() -> list[Callable[..., str]]:
    return [import_string(path) for c in area_configs()
            for path in getattr(c, "patient_panels", [])]
