"""The garbage collector's full passes, kept away from the moments a user waits on.

A full (oldest-generation) pass walks every object the process holds that is not frozen;
with Qt, pyqtgraph, MLflow and SQLAlchemy loaded that took 100-340 ms, with the interpreter
lock held, in whichever thread happened to allocate: the GUI thread stalled for each one.
Background imports (the runs list loading MLflow, the Augment tab's warm-up) allocate so
much that Python's default started a full pass every second or so; every event-loop stall
over 50 ms after clicking Train was one of them (bench/train_click.py).

So: a full pass waits for many more younger passes than Python's default, and what a big
import leaves behind is frozen (moved out of the collector's sight; the window has long done
this after opening a dataset), so the full passes that still come are short.
"""

from __future__ import annotations

import gc

#: Generation-1 passes between two full passes (Python's default: 10).
FULL_PASS_EVERY = 100


def pace_full_collections() -> None:
    """Make full passes rarer (process-wide; called once the app's window exists)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_PASS_EVERY)


def freeze_survivors() -> None:
    """Move every object tracked now out of the collector's sight (after a big import).

    Cheap (no pass is made); what is frozen is never collected, so call it when what was
    just loaded stays loaded (modules, an index), not in a loop.
    """
    gc.freeze()
