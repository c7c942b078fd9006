"""The server's heap: what is loaded is frozen out of the collector's walks, and a swap lets the previous version's
garbage go (scoring.serving.heap)."""

from __future__ import annotations

import gc
import weakref

from scoring.serving.heap import freeze_what_is_loaded, refreeze_after_swap


class _Model:
    """Stands for a loaded model whose objects refer to each other (a cycle only the collector frees)."""

    def __init__(self):
        self.itself = self


def test_a_frozen_model_outlives_collections_until_a_swap_lets_it_go():
    try:
        previous = _Model()
        gone = weakref.ref(previous)
        freeze_what_is_loaded()
        assert gc.get_freeze_count() > 0
        del previous  # swapped out: nothing refers to it any more but itself
        gc.collect()
        assert gone() is not None  # frozen: the collector does not walk it
        refreeze_after_swap()
        assert gone() is None and gc.get_freeze_count() > 0  # freed, and what serves now is frozen again
    finally:
        gc.unfreeze()  # the test process's heap as it was
