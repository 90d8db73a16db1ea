"""Index shards on Dask workers, searched from a client.

Each block of vectors becomes one shard: an :class:`~vector_accelerate.Index` built and kept
on a Dask worker (on that worker's device). A search sends the queries to every shard, and the
client merges the shards' ``k`` best per query, as one index over all the blocks would rank
them (equal distances go to the earlier shard). Dask (``dask.distributed``) is imported only by
:func:`build_shards`'s caller; this module needs it at call time, not at import.

Example::

    from dask.distributed import Client
    import vector_accelerate as va
    from vector_accelerate.dask import build_shards

    client = Client()  # or the address of a cluster's scheduler
    shards = build_shards(client, [xb[:500_000], xb[500_000:]], "IVF1024,Flat", train=xb[:50_000])
    D, I = shards.search(xq, 10, nprobe=16)
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

import vector_accelerate as va

__all__ = ["DaskShards", "build_shards", "merge_results"]


def _build(template: va.Index, block: np.ndarray, ids: np.ndarray) -> va.Index:
    """On a worker: the shard of ``block`` under ``ids`` (``template`` arrives unpickled)."""
    template.add_with_ids(np.asarray(block, dtype=np.float32), ids)
    return template


def _search(shard: va.Index, xq: np.ndarray, k: int, options: dict) -> tuple:
    """On a worker: one shard's ``(D, I)``."""
    return shard.search(xq, k, **options)


def _ntotal(shard: va.Index) -> int:
    return shard.ntotal


def merge_results(parts: Sequence[tuple], k: int, largest_first: bool = False) -> tuple:
    """Each query's ``k`` best of the shards' ``(D, I)`` results: smallest distances first
    (largest for inner-product metrics), ties to the earlier shard, missing results (id -1)
    last."""
    D = np.concatenate([np.asarray(d, dtype=np.float32) for d, _ in parts], axis=1)
    I = np.concatenate([np.asarray(i, dtype=np.int64) for _, i in parts], axis=1)
    key = -D.astype(np.float64) if largest_first else D.astype(np.float64)
    key = np.where(I < 0, np.inf, np.nan_to_num(key, nan=np.inf))
    # A stable sort keeps the shards' order among equal keys.
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)


class DaskShards:
    """Shards held by Dask workers (see :func:`build_shards`)."""

    def __init__(self, client: Any, shards: list, largest_first: bool) -> None:
        self.client = client
        self.shards = shards
        self.largest_first = largest_first

    @property
    def ntotal(self) -> int:
        """Vectors held by all shards."""
        return sum(self.client.gather([self.client.submit(_ntotal, s) for s in self.shards]))

    def search(self, xq: np.ndarray, k: int, **options: Any) -> tuple:
        """``(D, I)`` of the ``k`` nearest vectors of each row of ``xq`` over every shard;
        ``options`` are :meth:`vector_accelerate.Index.search`'s (``nprobe``, ``ef``,
        ``allowed``, ...). A shard's failure is raised here."""
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        [queries] = self.client.scatter([xq], broadcast=True)
        found = [self.client.submit(_search, s, queries, k, options, pure=False) for s in self.shards]
        return merge_results(self.client.gather(found), k, self.largest_first)


def build_shards(
    client: Any,
    blocks: Sequence[Any],
    factory: str,
    *,
    metric: Optional[Any] = None,
    train: Optional[np.ndarray] = None,
    ids: Optional[Sequence[np.ndarray]] = None,
) -> DaskShards:
    """One shard per block (NumPy arrays or Dask futures of them), built on the workers.

    ``factory`` and ``metric`` are :func:`vector_accelerate.index_factory`'s; an index that
    needs training (IVF) is trained once on the client with ``train`` (default: the first block)
    and every shard starts from that trained index, so all shards share one coarse quantizer.
    ``ids``: one id array per block (default: sequential over the blocks in order)."""
    first = blocks[0] if isinstance(blocks[0], np.ndarray) else client.gather(blocks[0])
    d = np.asarray(first).shape[1]
    template = va.index_factory(d, factory, metric)
    if not template.is_trained:
        template.train(np.asarray(first if train is None else train, dtype=np.float32))
    if ids is None:
        sizes = [len(b) if isinstance(b, np.ndarray) else None for b in blocks]
        if None in sizes:
            sizes = client.gather([client.submit(len, b) for b in blocks])
        starts = np.concatenate([[0], np.cumsum(sizes)])
        ids = [np.arange(starts[i], starts[i + 1], dtype=np.int64) for i in range(len(blocks))]
    # Host arrays go to the workers as data, not inside the task graph.
    blocks = [client.scatter(b) if isinstance(b, np.ndarray) else b for b in blocks]
    shards = [
        client.submit(_build, template, block, np.asarray(block_ids, dtype=np.int64), pure=False)
        for block, block_ids in zip(blocks, ids)
    ]
    client.gather([client.submit(_ntotal, s) for s in shards])  # raises a failed build here
    return DaskShards(client, shards, template._largest_first)
