"""What text the domain accepts. The services apply these, so the web forms, the API,
the admin and every later path (e-mail replies, imports) get the same rules."""

import unicodedata

from django.core.exceptions import ValidationError

# Multi-line text keeps these; every other control character is refused.
MULTILINE_CONTROLS = {"\t", "\n", "\r"}


def _controls(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) == "Cc"]


def single_line(value: str, *, field: str) -> str:
    """One line: any run of whitespace (CR/LF and tabs included) becomes one space, the
    ends are trimmed; any other control character is refused."""
    value = " ".join(str(value).split())
    if _controls(value):
        raise ValidationError({field: "Remove the control characters: this field is one line of plain text."})
    return value


def multiline(value: str, *, field: str) -> str:
    """Text with line breaks and tabs; NUL and other control characters are refused."""
    value = str(value)
    if any(c not in MULTILINE_CONTROLS for c in _controls(value)):
        raise ValidationError({field: "Remove the control characters (only line breaks and tabs are allowed)."})
    return value


# A cell starting with one of these is run as a formula by spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@")


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text (no CSV injection): a leading formula
    character is escaped with a quote, also when invisible characters a spreadsheet skips
    (a BOM, zero-width or other spaces, controls) come before it."""
    text = "" if value is None else str(value)
    start = 0
    while start < len(text) and unicodedata.category(text[start])[0] in "CZ":
        start += 1
    if text[start : start + 1] in FORMULA_STARTS or text[:1] in ("\t", "\r"):
        return "'" + text
    return text
