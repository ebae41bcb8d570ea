"""Fictional names for synthetic patients.

Given names are common ones; family names are built from invented syllables so that no
generated full name is meant to be a real person's.
"""

from __future__ import annotations

import numpy as np

_GIVEN = {
    "female": (
        "Ada",
        "Bea",
        "Cora",
        "Dina",
        "Elsa",
        "Fern",
        "Greta",
        "Hana",
        "Iris",
        "June",
        "Kira",
        "Lena",
        "Mira",
        "Nora",
        "Opal",
        "Pia",
        "Rosa",
        "Sage",
        "Tess",
        "Vera",
        "Wren",
        "Yara",
        "Zoe",
        "Maren",
        "Lucia",
        "Ines",
        "Nell",
        "Ida",
        "Alma",
        "Edie",
    ),
    "male": (
        "Abe",
        "Bram",
        "Cal",
        "Dane",
        "Eli",
        "Finn",
        "Gus",
        "Hugo",
        "Ivo",
        "Jude",
        "Kai",
        "Leo",
        "Milo",
        "Nico",
        "Otto",
        "Penn",
        "Rafe",
        "Soren",
        "Theo",
        "Ugo",
        "Vic",
        "Wes",
        "Xavi",
        "Yves",
        "Zane",
        "Arlo",
        "Bodhi",
        "Cyrus",
        "Ezra",
        "Lars",
    ),
}
_FIRST = (
    "Quor",
    "Vell",
    "Brin",
    "Thal",
    "Mossk",
    "Drev",
    "Kaln",
    "Orv",
    "Pell",
    "Sarn",
    "Ulm",
    "Yarr",
    "Zeph",
    "Gorm",
    "Hask",
    "Jorv",
    "Lunt",
    "Nebb",
    "Ruth",
    "Tamb",
)
_LAST = (
    "avin",
    "eroth",
    "ingale",
    "ostrand",
    "umley",
    "ackett",
    "evrin",
    "ithorn",
    "oway",
    "andry",
    "esk",
    "illow",
    "orne",
    "uvic",
    "aszek",
    "enby",
    "idge",
    "olm",
    "urst",
    "yde",
)


def fictional_name(rng: np.random.Generator, sex: str) -> tuple[str, str]:
    """A (given, family) name pair; given names follow ``sex`` ("female" or "male")."""
    given = _GIVEN[sex][int(rng.integers(len(_GIVEN[sex])))]
    family = _FIRST[int(rng.integers(len(_FIRST)))] + _LAST[int(rng.integers(len(_LAST)))]
    return given, family
