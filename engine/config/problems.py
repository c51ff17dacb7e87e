"""How a config problem is named: the blamed keys, a spelling hint, a short echo of the value."""

import difflib
from typing import Any

__all__ = ["InvalidFields", "brief", "dotted", "is_scalar", "suggest_key"]


class InvalidFields(ValueError):
    """Raised by validators to blame specific nested keys.

    A bare ValueError in a model validator is reported against the whole
    section; this one carries paths relative to the validated object, which
    pydantic keeps in the error's context for us to read back.
    """

    def __init__(self, problems: list[tuple[Any, str]]):
        self.problems = [((p,) if isinstance(p, (str, int)) else tuple(p), m) for p, m in problems]
        super().__init__("; ".join(m for _, m in self.problems))


def dotted(parts: list) -> str:
    """``search.space["optim.lr"].low``: quote keys that contain dots, index lists."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part:
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out


def suggest_key(key: str, names: list[str]) -> str | None:
    """The field the user most likely meant, or None."""
    norm = key.lower().replace("-", "_")
    if norm in names:
        return norm

    def initials(name: str) -> str:
        return "".join(word[0] for word in name.split("_") if word)

    # Abbreviations difflib cannot see: learning_rate -> lr, wd -> weight_decay.
    for name in names:
        if ("_" in norm and initials(norm) == name) or ("_" in name and initials(name) == norm):
            return name
    close = difflib.get_close_matches(norm, names, n=1, cutoff=0.6)
    return close[0] if close else None


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
