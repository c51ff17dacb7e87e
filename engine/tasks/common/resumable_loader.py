"""A training loader that goes on where the training loop says it is, so a resumed run sees
exactly the batches an uninterrupted one would.

Lightning restores its loop mid-epoch (the epoch, and how many of its batches are done)
but a plain DataLoader starts every iteration at the top of the epoch's order: the
start is trained twice, the end never. Lightning's own remedy, a loader with
``state_dict``, is not enough here: Lightning builds the train loader before it loads
the checkpoint when ``configure_optimizers`` asks for ``estimated_stepping_batches``
(the schedulers do), and it never hands that loader its state; and a count the loader
keeps itself cannot tell a batch the loop finished from one it was holding when the
run died (a checkpoint written on an exception redoes that batch).

So the loader asks the loop. When an epoch's first batch is asked for (by then Lightning
has set the sampler's epoch and restored its progress), ``batches_done()`` says how many
of this epoch's batches the loop already trained on, and the batch sampler leaves out
that many index lists of the same seeded order: no image is loaded for them, and
worker prefetching cannot shift the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import BatchSampler, DataLoader


class ResumableBatchSampler(BatchSampler):
    """A ``BatchSampler`` whose next pass can start after its first ``n`` batches."""

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self._skip = 0

    def skip_next(self, batches: int) -> None:
        """Leave out the first ``batches`` batches of the next pass only."""
        if batches < 0:
            raise ValueError(f"cannot skip a negative number of batches ({batches})")
        self._skip = int(batches)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self._skip = self._skip, 0
        for position, indices in enumerate(super().__iter__()):
            if position >= skip:
                yield indices


def _none_done() -> int:
    return 0


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``ResumableBatchSampler`` that starts each epoch after the batches
    ``batches_done()`` reports (0 outside a resumed epoch)."""

    def __init__(self, *args: Any, batches_done: Callable[[], int] = _none_done, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.batch_sampler, ResumableBatchSampler):
            raise TypeError(
                "ResumableDataLoader needs batch_sampler=ResumableBatchSampler(...), got "
                f"{type(self.batch_sampler).__name__}"
            )
        self.batches_done = batches_done

    def __iter__(self) -> Iterator[Any]:
        return self._epoch_batches()

    def _epoch_batches(self) -> Iterator[Any]:
        # A generator: nothing runs (no worker starts fetching) until the loop asks for a batch,
        # when the epoch and the loop's progress are final.
        self.batch_sampler.skip_next(int(self.batches_done()))
        yield from DataLoader.__iter__(self)
