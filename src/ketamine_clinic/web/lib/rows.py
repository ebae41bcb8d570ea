"""Model instances read from SQL of their own, for the few reads a hot path runs at every
request where building the query through the ORM costs more than running it (a joined
read of four models compiles seventy columns each time).

:class:`Columns` is one model's concrete columns under a table alias: ``sql`` for the
SELECT list, and :meth:`Columns.read`, which turns its slice of a fetched row into an
instance with the fields' own conversions (aware datetimes, parsed JSON), as the ORM
would have built it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)
_Converter = tuple[int, list[Callable[..., Any]], Any]


class Columns(Generic[M]):
    """The concrete columns of ``model`` as ``alias."column"`` in the model's field order."""

    def __init__(self, model: type[M], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields = tuple(model._meta.concrete_fields)
        self.names = [f.attname for f in self.fields]
        self.sql = ", ".join(f'{alias}."{f.column}"' for f in self.fields)
        self.width = len(self.fields)
        self._converters: dict[str, list[_Converter]] = {}

    def _converters_for(self) -> list[_Converter]:
        """The backend's and the fields' converters of each column (as the compiler's
        ``get_converters``), worked out once per database vendor."""
        found = self._converters.get(connection.vendor)
        if found is None:
            found = []
            for i, f in enumerate(self.fields):
                col = f.get_col(self.alias)
                funcs = [*connection.ops.get_db_converters(col),
                         *col.get_db_converters(connection)]
                if funcs:
                    found.append((i, funcs, col))
            self._converters[connection.vendor] = found
        return found

    def read(self, row: Sequence[Any], start: int = 0) -> M:
        """The instance held in ``row[start:start + width]``."""
        values = list(row[start:start + self.width])
        for i, funcs, col in self._converters_for():
            for func in funcs:
                values[i] = func(values[i], col, connection)
        return self.model.from_db(connection.alias, self.names, values)
