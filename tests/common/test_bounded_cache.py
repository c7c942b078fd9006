from common.bounded_cache import BoundedCache


def test_least_recently_used_entries_beyond_the_bound_are_dropped_and_released():
    released = []
    cache = BoundedCache(size=2, on_evict=lambda key, value: released.append((key, value)))
    loads = []

    def load(key):
        return lambda: loads.append(key) or key.upper()

    assert cache.get_or_load("a", load("a")) == "A"
    assert cache.get_or_load("b", load("b")) == "B"
    assert cache.get_or_load("a", load("a")) == "A"  # a hit: not loaded again, now the most recent
    assert cache.get_or_load("c", load("c")) == "C"  # "b" is the least recently used
    assert loads == ["a", "b", "c"] and released == [("b", "B")]
    assert len(cache) == 2 and "a" in cache and "b" not in cache
