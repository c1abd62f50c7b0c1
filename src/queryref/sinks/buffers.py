"""Growable column buffers: a result's rows copied once, into the memory the DataFrame keeps.

Joining per-batch pieces at the end copies every column a second time and holds the pieces
and the joined column at once. A :class:`Growable` is one contiguous block that batches are
copied into as they arrive. Big blocks are anonymous memory maps, which grow with
``mremap`` on Linux (pages are moved, not copied) and whose reserved but unwritten pages cost
no memory; ``finish()`` trims the block to its length and hands it to numpy, which frees it
when the last array over it goes. Small blocks are plain numpy arrays (a map per small column
would use up the process's map count).

Python objects own the memory throughout (no C pointer is ever held), so an exception at any
point, KeyboardInterrupt included, can leak nothing and free nothing twice; a block that is
still seen by a numpy view cannot be resized (the map refuses), and is then copied instead.
Where maps cannot be resized (macOS, Windows) growing copies: correct, only slower.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np

#: blocks from this size on are memory maps (below it, numpy arrays that grow by copying)
MAP_FROM = 4 << 20


def _new_map(nbytes: int) -> mmap.mmap:
    flags = getattr(mmap, "MAP_PRIVATE", None)
    if flags is None:  # pragma: no cover - Windows
        return mmap.mmap(-1, nbytes)
    return mmap.mmap(-1, nbytes, flags=flags)


class Growable:
    """A contiguous array of one dtype that batches are appended to, copied once.

    >>> g = Growable(np.int64)
    >>> g.append(np.arange(3)); g.tail(2)[:] = [7, 8]; g.commit(2)
    >>> g.finish().tolist()
    [0, 1, 2, 7, 8]
    """

    def __init__(self, dtype: Any, capacity: int = 1024) -> None:
        self.dtype = np.dtype(dtype)
        self.length = 0
        self._capacity = 0
        self._store: np.ndarray[Any, Any] | mmap.mmap | None = None
        self._grow(max(capacity, 16))

    def _grow(self, capacity: int) -> None:
        nbytes = capacity * self.dtype.itemsize
        old = self._store
        if isinstance(old, mmap.mmap):
            try:
                old.resize(nbytes)  # mremap: the pages move, nothing is copied
                self._capacity = capacity
                return
            except (BufferError, OSError, SystemError, ValueError):
                pass  # no mremap here, or a view still open: copy into a new block
        store: np.ndarray[Any, Any] | mmap.mmap
        store = _new_map(nbytes) if nbytes >= MAP_FROM else np.empty(capacity, self.dtype)
        if old is not None and self.length:
            self._view_of(store, 0, self.length)[:] = self._view(0, self.length)
        self._store = store
        self._capacity = capacity

    def _view_of(self, store: np.ndarray[Any, Any] | mmap.mmap, start: int,
                 stop: int) -> np.ndarray[Any, Any]:
        if isinstance(store, mmap.mmap):
            return np.frombuffer(store, dtype=self.dtype, count=stop - start,
                                 offset=start * self.dtype.itemsize)
        return store[start:stop]

    def _view(self, start: int, stop: int) -> np.ndarray[Any, Any]:
        """A writable array over ``[start, stop)`` (drop it before the block grows)."""
        assert self._store is not None
        return self._view_of(self._store, start, stop)

    def reserve(self, n: int) -> None:
        """Make room for ``n`` more values (at least doubling, so growth is amortised)."""
        need = self.length + n
        if need > self._capacity:
            self._grow(max(need, 2 * self._capacity))

    def tail(self, n: int) -> np.ndarray[Any, Any]:
        """The next ``n`` slots, to be written and then ``commit``-ed."""
        self.reserve(n)
        return self._view(self.length, self.length + n)

    def commit(self, n: int) -> None:
        self.length += n

    def append(self, values: np.ndarray[Any, Any]) -> None:
        """Copy ``values`` (cast to this dtype) onto the end."""
        n = len(values)
        np.copyto(self.tail(n), values, casting="unsafe")
        self.commit(n)

    def fill(self, value: Any, n: int) -> None:
        """Append ``n`` copies of ``value``."""
        self.tail(n).fill(value)
        self.commit(n)

    def finish(self) -> np.ndarray[Any, Any]:
        """The values as a numpy array that owns its block; the buffer is empty after."""
        store, length = self._store, self.length
        self._store, self.length, self._capacity = None, 0, 0
        if isinstance(store, mmap.mmap):
            try:
                store.resize(max(length * self.dtype.itemsize, 1))  # the unused tail goes
            except (BufferError, OSError, SystemError, ValueError):
                pass
            return np.frombuffer(store, dtype=self.dtype, count=length)
        assert store is not None
        values = store[:length]
        return values.copy() if len(store) > length + length // 4 else values

    def free(self) -> None:
        """Drop the values without making an array of them."""
        self._store, self.length, self._capacity = None, 0, 0
