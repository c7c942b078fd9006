"""The one caching policy of the project: keep the most recently used few entries, drop the rest.

Jobs that follow the registry (a stream, a server) meet a new model version now and then and must not keep every
version they ever loaded; the old and the new version side by side is what a swap needs, and a little more.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

MODEL_CACHE_SIZE = 3  # models (or their files) held at once, per process

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """Least recently used entries beyond `size` are dropped; `on_evict(key, value)` releases what they hold."""

    def __init__(self, size: int = MODEL_CACHE_SIZE, on_evict: Callable[[K, V], None] | None = None):
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._on_evict = on_evict

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = load()
        self._entries[key] = value
        while len(self._entries) > self._size:
            old_key, old_value = self._entries.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(old_key, old_value)
        return value

    def pop(self, key: K) -> V | None:
        """Take an entry out (its holder now owns what it holds): None when absent."""
        return self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
