"""Reading the next batch on a thread while the current one is converted.

DuckDB and the ADBC drivers release the GIL while they produce a batch, so a thread that
reads ahead lets the engine work while Python converts (2 cores: the engine's scan and the
copy into pandas overlap). At most ``depth`` batches wait in the queue, plus the one being
read: the guard's "budget plus one batch" becomes "budget plus a batch or two".

Stopping early (the budget crossed, an error, an abandoned iterator) interrupts the query
in the engine, waits for the reading thread to let go of the result, and only then closes it:
a result must never be freed while another thread is reading it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pyarrow as pa

from queryref.backends import Stream
from queryref.backends._common import uninterrupted

_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _ReadAhead:
    """The reading thread and its queue."""

    def __init__(self, inner: Stream, depth: int) -> None:
        self._inner = inner
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = threading.Event()  # the inner stream is exhausted or failed
        self._thread = threading.Thread(target=self._run, name="queryref-read-ahead",
                                        daemon=True)

    def start(self) -> None:
        """Start the reading thread; on Ctrl-C meanwhile, stop it again and close the stream
        (else the thread, waiting to hand on a batch nobody takes, kept the query's
        connection for good)."""
        try:
            with uninterrupted():  # (started, or not: never started half)
                self._thread.start()
        except BaseException:
            self.close()
            raise

    def _run(self) -> None:
        try:
            for batch in self._inner:
                if not self._put(batch):
                    return
                del batch  # not held while the next one is read
            self._finished.set()
            self._put(_END)
        except BaseException as err:  # handed to the consumer, raised there
            self._finished.set()
            self._put(_Failed(err))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            assert isinstance(item, pa.RecordBatch)
            yield item
            del item

    def cancel(self) -> None:
        self._stop.set()
        self._inner.interrupt()

    def close(self) -> None:
        if not self._finished.is_set():  # abandoned while the query runs: stop it first
            self.cancel()
        self._stop.set()
        if self._thread.ident is not None:  # (started)
            self._thread.join()
        while True:  # drop what was read ahead
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._inner.close()


def read_ahead(stream: Stream, depth: int = 1) -> Stream:
    """``stream`` read ahead on a thread when its engine allows it, else ``stream`` itself.

    >>> import queryref as qr
    >>> con = qr.connect()
    >>> s = con.backend.stream("SELECT range AS a FROM range(10)", 4)
    >>> sum(b.num_rows for b in read_ahead(s))
    10
    """
    if not stream.read_ahead:
        return stream
    reader = _ReadAhead(stream, depth)
    reader.start()
    return Stream(stream.schema, reader.batches(), cancel=reader.cancel, close=reader.close,
                  expected_rows=stream.expected_rows, expected_bytes=stream.expected_bytes)
