"""From msgspec's error to the protocol author's: the key path and a plain problem.

``msgspec`` says ``Expected `int`, got `str` - at `$.version```; the author reads
``<origin>:version: must be a whole number, got 'one'``. The choices of an enumeration are
read from the declared type (:mod:`.format`) at the key path; the value from the parsed TOML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec
import msgspec.inspect as mi

from ketamine_clinic.clinical.protocol import format as fmt
from ketamine_clinic.errors import UsageError

__all__ = ["read_shape"]

_UNKNOWN_KEY = "unknown key (see docs/protocol-format.md)"

_ERROR_RE = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_STEP_RE = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [key if key else int(index) for key, index in _STEP_RE.findall(path)]


def _raw_at(data: Any, steps: Sequence[str | int]) -> Any:
    for step in steps:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _type_at(steps: Sequence[str | int]) -> mi.Type | None:
    """The declared type of the key at ``steps`` in :class:`.format.ProtocolFile`."""
    node: mi.Type | None = mi.type_info(fmt.ProtocolFile)
    for step in steps:
        node = _unwrapped(node)
        if isinstance(step, int) and isinstance(node, mi.ListType):
            node = node.item_type
        elif isinstance(step, str) and isinstance(node, mi.StructType):
            node = next((f.type for f in node.fields if f.encode_name == step), None)
        else:
            return None
    return _unwrapped(node)


def _unwrapped(node: mi.Type | None) -> mi.Type | None:
    if isinstance(node, mi.Metadata):
        return _unwrapped(node.type)
    if isinstance(node, mi.UnionType):
        # ``X | UNSET`` (an optional key) or ``int | float`` (a number): keep X, or the union.
        kept = [t for t in node.types if not isinstance(t, mi.NoneType)]
        return _unwrapped(kept[0]) if len(kept) == 1 else node
    return node


def _choices(node: mi.Type | None) -> tuple[str, ...]:
    if isinstance(node, mi.EnumType):
        return tuple(str(member.value) for member in node.cls)
    if isinstance(node, mi.LiteralType):
        return tuple(str(v) for v in node.values)
    return ()


def _problem(message: str, steps: list[str | int], data: Any) -> tuple[list[str | int], str]:
    """The key path and the author's problem for one msgspec message."""
    raw = _raw_at(data, steps)
    if m := re.match(r"Object missing required field `(.+)`", message):
        return [*steps, m.group(1)], "is required"
    if m := re.match(r"Object contains unknown field `(.+)`", message):
        return [*steps, m.group(1)], _UNKNOWN_KEY
    if message.startswith("Invalid enum value"):
        return steps, f"must be one of {', '.join(_choices(_type_at(steps)))}; got {raw!r}"
    declared = _type_at(steps)
    numeric = message.startswith(("Expected `int", "Expected `float"))
    if isinstance(declared, mi.UnionType) and numeric:
        # A bound: ``int | float``, each at least ``ge``.
        least = next((n.ge for n in declared.types if isinstance(n, mi.IntType | mi.FloatType)
                      and n.ge is not None), None)
        if least is not None:
            return steps, f"must be a number of at least {least}, got {raw!r}"
    if m := re.match(r"Expected `int` >= (\d+)", message):
        return steps, f"must be at least {m.group(1)}, got {raw!r}"
    if message.startswith("Expected `array` of length >= 1"):
        return steps, "must not be empty"
    if message.startswith("Expected `str` matching regex"):
        return steps, f"must be a non-empty string, got {raw!r}"
    expected = {
        "int": "must be a whole number",
        "int | float": "must be a number",
        "str": "must be a non-empty string",
    }
    if m := re.match(r"Expected `([^`]+)`, got", message):
        kind = m.group(1)
        if kind == "array":
            node = _type_at(steps)
            items = node.item_type if isinstance(node, mi.ListType) else None
            if isinstance(_unwrapped(items), mi.StructType):
                return steps, "must be an array of tables ([[...]])"
            return steps, "must be a list of strings"
        if kind == "object":
            return steps, "must be a table"
        if kind in expected:
            return steps, f"{expected[kind]}, got {raw!r}"
    return steps, message[:1].lower() + message[1:]


def _path_text(steps: Sequence[str | int]) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def read_shape(data: dict[str, Any], origin: str) -> fmt.ProtocolFile:
    try:
        return msgspec.convert(data, fmt.ProtocolFile, strict=True)
    except msgspec.ValidationError as exc:
        found = _ERROR_RE.match(str(exc))
        assert found is not None  # the pattern matches any text
        steps, problem = _problem(found["message"], _steps(found["path"] or ""), data)
        where = _path_text(steps)
        raise UsageError(f"{origin}:{where}" if where else origin, problem) from None
