"""A bounded cache of rendered snapshot images, with one render per image at a time.

Rendering a snapshot to PNG takes about a second (matplotlib layout and drawing), so the
dashboard must not render the same unchanged file once per client. :class:`SnapshotImageCache`
keeps the PNG of each :class:`SnapshotKey` — the file's path, modification time (ns) and
size, and the render parameters (environment index, dpi) — so a rewritten snapshot gets a new
key and is rendered again, while an unchanged one is served from memory. The cache holds at
most ``max_images`` images and ``max_bytes`` bytes, dropping the least recently used first.

Concurrency: requests for a key that is being rendered wait for that render (they share its
result or its error) instead of starting another, and at most ``max_renders`` renders run at
once, each in a worker thread, so waiting requests hold no thread. The methods are coroutines
of one asyncio event loop (the server's).

The key is read (``stat``) before the file is rendered. A file replaced in between is rendered
in its newer state under the older key: the next request sees the new key and renders once
more, so an image is never older than its key.

Public names: ``SnapshotKey``, ``snapshot_key``, ``CacheStats``, ``SnapshotImageCache``,
``Renderer``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from hhml.errors import ConfigError

__all__ = ["CacheStats", "Renderer", "SnapshotImageCache", "SnapshotKey", "snapshot_key"]

#: ``render(path, env, dpi) -> PNG bytes``; raises an :class:`~hhml.errors.HHmLError`
#: for a file it cannot render.
Renderer = Callable[[Path, int, int], bytes]


@dataclass(frozen=True)
class SnapshotKey:
    """What a rendered image depends on.

    Attributes
    ----------
    path
        The snapshot file, as given.
    mtime_ns
        Its modification time, in nanoseconds since the epoch.
    size
        Its size in bytes.
    env
        The environment (batch index) drawn.
    dpi
        The resolution of the figure, in dots per inch.
    """

    path: str
    mtime_ns: int
    size: int
    env: int
    dpi: int


def snapshot_key(path: Path, env: int, dpi: int) -> SnapshotKey | None:
    """The key of ``path`` rendered for ``env`` at ``dpi``; ``None`` if the file is gone.

    Blocking (one ``stat``): call it from a worker thread in a server.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return SnapshotKey(str(path), stat.st_mtime_ns, stat.st_size, env, dpi)


@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`SnapshotImageCache` since it was made.

    Attributes
    ----------
    hits
        Requests answered from the cache.
    renders
        Renders started (successful or not).
    joined
        Requests that waited for a render another request had started.
    images, bytes
        Images held now and their total size in bytes.
    """

    hits: int
    renders: int
    joined: int
    images: int
    bytes: int


class SnapshotImageCache:
    """Rendered snapshot images by :class:`SnapshotKey`, least recently used dropped first.

    Parameters
    ----------
    render
        Makes the PNG of ``(path, env, dpi)``; runs in a worker thread.
    max_images
        Most images kept (at least 1).
    max_bytes
        Most bytes kept over all images; an image larger than this alone is returned
        but not kept.
    max_renders
        Most renders running at once (at least 1); more wait for a free slot.

    Raises
    ------
    ConfigError
        A limit is below 1.
    """

    def __init__(
        self,
        render: Renderer,
        *,
        max_images: int = 64,
        max_bytes: int = 64 * 2**20,
        max_renders: int = 1,
    ) -> None:
        for name, value in (
            ("max_images", max_images),
            ("max_bytes", max_bytes),
            ("max_renders", max_renders),
        ):
            if value < 1:
                raise ConfigError(f"snapshot image cache: {name} = {value}; it must be >= 1")
        self._render = render
        self.max_images = max_images
        self.max_bytes = max_bytes
        self.max_renders = max_renders
        # The images are touched only on the event loop; the lock makes stats() and
        # clear() safe from other threads as well.
        self._lock = threading.Lock()
        self._images: OrderedDict[SnapshotKey, bytes] = OrderedDict()
        self._bytes = 0
        self._hits = self._renders = self._joined = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(max_renders)
        self._pending: dict[SnapshotKey, asyncio.Future[bytes]] = {}

    # -- public -------------------------------------------------------------------------------

    async def get(self, path: Path, env: int = 0, dpi: int = 100) -> bytes | None:
        """The PNG of ``path`` for ``env`` at ``dpi``; ``None`` if the file does not exist.

        Rendered at most once per key while the key stays in the cache, and at most once
        at a time whatever the number of simultaneous callers.

        Raises
        ------
        HHmLError
            Whatever ``render`` raises (e.g. :class:`~hhml.errors.CheckpointError` for an
            unreadable file or an ``env`` out of range); every caller waiting for that
            render gets it, and nothing is cached.
        """
        key = await anyio.to_thread.run_sync(snapshot_key, path, env, dpi)
        if key is None:
            return None
        return await self.get_key(key)

    async def get_key(self, key: SnapshotKey) -> bytes:
        """The PNG of ``key`` (see :meth:`get`), rendering ``Path(key.path)`` if needed."""
        self._bind_loop()
        with self._lock:
            png = self._images.get(key)
            if png is not None:
                self._images.move_to_end(key)
                self._hits += 1
                return png
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._render_and_store(key))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._finished(key, done))
        else:
            with self._lock:
                self._joined += 1
        # A caller that is cancelled (client gone) must not cancel the render others share.
        return await asyncio.shield(pending)

    def stats(self) -> CacheStats:
        """The counters and the size of the cache now."""
        with self._lock:
            return CacheStats(
                hits=self._hits,
                renders=self._renders,
                joined=self._joined,
                images=len(self._images),
                bytes=self._bytes,
            )

    def clear(self) -> None:
        """Drop every image (renders in progress still complete and are stored)."""
        with self._lock:
            self._images.clear()
            self._bytes = 0

    # -- internals ----------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        """Make the semaphore and the pending renders belong to the running event loop.

        A cache used from a new event loop (a restarted server, tests) starts with fresh
        ones; the images are kept.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.max_renders)
            self._pending = {}

    def _finished(self, key: SnapshotKey, done: asyncio.Future[bytes]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter went away

    async def _render_and_store(self, key: SnapshotKey) -> bytes:
        async with self._slots:
            with self._lock:
                self._renders += 1
            png = await anyio.to_thread.run_sync(self._render, Path(key.path), key.env, key.dpi)
        self._store(key, png)
        return png

    def _store(self, key: SnapshotKey, png: bytes) -> None:
        with self._lock:
            old = self._images.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            if len(png) > self.max_bytes:
                return
            self._images[key] = png
            self._bytes += len(png)
            while len(self._images) > self.max_images or self._bytes > self.max_bytes:
                _, dropped = self._images.popitem(last=False)
                self._bytes -= len(dropped)
