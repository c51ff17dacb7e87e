"""Why a training child failed, read from its log (Qt-free).

The engine ends a failed command with ``lightbox VERB: reason`` (engine.cli.report_failure;
a reason may go on over a few lines, e.g. a dataset's problems), or, for a run that trained
and went bad, a final JSON line with ``"status": "FAILED"`` and its message.  Output from
other sources (a crash before the engine could speak, a killed interpreter) falls back to
a Python traceback's last line, else the last line of the log.
"""

from __future__ import annotations

import json
import re

_ENGINE_LINE = re.compile(r"^lightbox [\w-]+: (.+)$")
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Interrupt|Exit)\b(?::.*)?$")
#: Lines the app writes into the same log panel, never the child's words.
_APP_PREFIX = "[lightbox]"
MAX_LINES = 8


def engine_error(lines: list[str]) -> str | None:
    """The reason the engine gave for failing, as it worded it (None for an empty log)."""
    own = [line.rstrip() for line in lines if not line.startswith(_APP_PREFIX)]
    for i in range(len(own) - 1, -1, -1):
        said = _ENGINE_LINE.match(own[i])
        if said:
            more = [line for line in own[i + 1 :] if line.strip() and not line.startswith("{")]
            return "\n".join([said.group(1), *more][:MAX_LINES])
    for line in reversed(own):
        if line.startswith("{") and '"status"' in line:
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if result.get("status") == "FAILED" and result.get("message"):
                return str(result["message"])
    if any(line.startswith("Traceback (most recent call last)") for line in own):
        crash = next((line for line in reversed(own) if _EXCEPTION_LINE.match(line.strip())), None)
        if crash:
            return crash.strip()
    return next((line.strip() for line in reversed(own) if line.strip()), None)
