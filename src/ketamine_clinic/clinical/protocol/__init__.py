"""Protocols as data: the TOML format, its validating loader, flat rows and diffs.

A protocol version is identified by ``(name, version)`` and by the SHA-256 of its TOML
text. The web layer stores the text of each published version and re-parses it with
:func:`load_protocol_text`; the command line reads the versions shipped in
``ketamine_clinic/protocols/*.toml`` (:func:`shipped_protocols`, :func:`load_protocol`).

Every number in a protocol carries its source: a reference key from
``reference/references.toml`` (``"S9"``, ``"S26-label"``), or ``"clinic policy (set by
...)"``. The format is described in ``docs/protocol-format.md``; errors raised while loading
are :class:`~ketamine_clinic.errors.UsageError` whose field is ``"<origin>:<key path>"``.

Modules
-------
:mod:`.model` (the loaded protocol as frozen dataclasses), :mod:`.sources` (reference keys,
condition vocabulary, what a source must say), :mod:`.format` (the file format as typed
msgspec Structs, its JSON Schema), :mod:`.shape` (msgspec's errors in the author's terms),
:mod:`.load` (the loader), :mod:`.shipped` (the shipped versions), :mod:`.rows` (flat rows
and diffs). Callers import from this package.
"""

from ketamine_clinic.clinical.protocol.load import FORMAT, load_protocol_text
from ketamine_clinic.clinical.protocol.model import (
    TEST_KINDS,
    Choice,
    Condition,
    DiffRow,
    Dosing,
    DosingBasis,
    Drug,
    DrugForm,
    Medication,
    Monitoring,
    Note,
    Protocol,
    ProtocolStatus,
    Quantity,
    Recovery,
    Reference,
    RiseAlarm,
    Row,
    RuleKind,
    ScreeningRule,
    ScreeningRules,
    Sedation,
    Series,
    Severity,
    TestRequirement,
    TitrationTarget,
    WeightRule,
)
from ketamine_clinic.clinical.protocol.rows import (
    protocol_diff,
    protocol_rows,
)
from ketamine_clinic.clinical.protocol.shipped import load_protocol, shipped_protocols
from ketamine_clinic.clinical.protocol.sources import (
    condition_vocabulary,
    references,
    source_keys,
    source_problem,
)

__all__ = [
    "FORMAT",
    "TEST_KINDS",
    "Choice",
    "Condition",
    "DiffRow",
    "Dosing",
    "DosingBasis",
    "Drug",
    "DrugForm",
    "Medication",
    "Monitoring",
    "Note",
    "Protocol",
    "ProtocolStatus",
    "Quantity",
    "Recovery",
    "Reference",
    "RiseAlarm",
    "Row",
    "RuleKind",
    "ScreeningRule",
    "ScreeningRules",
    "Sedation",
    "Series",
    "Severity",
    "TestRequirement",
    "TitrationTarget",
    "WeightRule",
    "condition_vocabulary",
    "load_protocol",
    "load_protocol_text",
    "protocol_diff",
    "protocol_rows",
    "references",
    "shipped_protocols",
    "source_keys",
    "source_problem",
]
