"""Text that comes from outside (paths, file, repo and GPU names, model answers) on its way into files.

Rendered files are line-based (shell, YAML, systemd units), so one character that starts a new line turns a name
into a new command, key or setting. Such names are refused where they enter (BadInput, exit 2); comments, which
no parser checks, only ever get text with every non-printable character spelled out.
"""

from __future__ import annotations

import unicodedata

from planner.errors import BadInput

# Cc: the C0 and C1 controls (\t \n \r \x00 \x1b \x7f \x85 ...); Zl, Zp: U+2028 and U+2029. YAML 1.1 (PyYAML)
# breaks lines at \x85, U+2028 and U+2029 too, systemd at \r, the shell at \n.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_SHOWN_CHARS = 120


def control_characters(text: str) -> list[str]:
    """The distinct refused characters in `text`, in order of first appearance."""
    return list(dict.fromkeys(ch for ch in text if unicodedata.category(ch) in _REFUSED_CATEGORIES))


def check_printable(text: str, what: str) -> str:
    """`text` unchanged, or BadInput naming `what` when it holds a control or line-separator character."""
    found = control_characters(text)
    if found:
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in found[:4])
        raise BadInput(
            f"{what} {shown(text)} contains a control character ({codes}); planner writes it into run files "
            "where it would start a new line: rename it"
        )
    return text


def shown(text: str) -> str:
    """`text` as one quoted, bounded line (repr spells out every control character)."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…")


def comment_text(value: object) -> str:
    """`value` for a comment line: every non-printable character (a line break above all) as a \\u escape."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in str(value))
