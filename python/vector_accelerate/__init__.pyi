"""VectorAccelerate: GPU-accelerated (CUDA) and CPU vector search with a FAISS-shaped API.

Arrays come in as NumPy arrays of any layout (C-contiguous float32 is read in place; float64,
float16, Fortran order and strided views are converted) and results go out as new NumPy arrays.
``knn`` and ``Index`` also take any DLPack tensor (PyTorch, CuPy, JAX): CUDA tensors are read in
place on the device and results come back as the caller's type on the same device; host tensors
are read through NumPy without a copy. The GIL is released while the library computes; the GPU is
used when one is present.
"""
from os import PathLike
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

METRIC_L2: int
"""FAISS's number for squared L2 (1)."""
METRIC_INNER_PRODUCT: int
"""FAISS's number for inner product (0)."""

Metric = Union[str, int]
"""A metric name (``"l2"``, ``"euclidean"``, ``"ip"``, ``"cosine"``, ``"cosine_similarity"``,
``"l1"``, ...) or ``METRIC_L2`` / ``METRIC_INNER_PRODUCT``."""

Array = Any
"""A NumPy array (or anything NumPy converts) or a DLPack tensor (PyTorch, CuPy, JAX)."""

class DLPackTensor:
    """A result on the library's device, handed once to a framework's ``from_dlpack``."""

    def __dlpack__(
        self,
        *,
        stream: Optional[int] = None,
        max_version: Optional[Tuple[int, int]] = None,
        dl_device: Optional[Tuple[int, int]] = None,
        copy: Optional[bool] = None,
    ) -> Any:
        """A ``"dltensor"`` capsule; ``stream`` is ordered after the work that made it."""
    def __dlpack_device__(self) -> Tuple[int, int]:
        """``(2, ordinal)`` for CUDA memory, ``(1, 0)`` for the host."""

class VectorAccelerateError(Exception):
    """An error of the library that is not about the input (device, kernels, files)."""

def device() -> str:
    """The module's default device as a string: ``"cpu"`` or ``"cuda:N"``."""

class Device:
    """A device computations run on: ``Device("cpu")``, ``Device("cuda")``, ``Device("cuda:1")`` or
    ``Device("auto")`` (the GPU when usable). Used as a context manager (``with va.Device("cpu"):``)
    it is the module's default inside the block."""

    def __init__(self, spec: str = "auto", *, memory_budget: Optional[int] = None) -> None:
        """Opens the device; ``memory_budget`` (bytes) caps what one operation may use."""
    @property
    def type(self) -> str:
        """``"cpu"`` or ``"cuda"``."""
    @property
    def index(self) -> Optional[int]:
        """The CUDA ordinal (``None`` for the CPU)."""
    @property
    def name(self) -> str:
        """The device's name."""
    @property
    def memory_budget(self) -> int:
        """Bytes one operation may use (larger jobs are tiled to fit)."""
    @property
    def fallback_reason(self) -> Optional[str]:
        """Why ``"auto"`` did not choose a GPU (``None`` when it did or was not asked)."""
    def info(self) -> dict:
        """Facts about the device: name, memory, compute capability, library versions."""
    def __enter__(self) -> "Device":
        """Makes this device the module's default until the block ends."""
    def __exit__(self, *exc: Any) -> None:
        """Restores the default from before the block."""

def get_device() -> Device:
    """The module's default device (chosen on first use: the GPU when one is usable, or as
    ``VECTOR_ACCELERATE_DEVICE`` says)."""

def set_device(device: Union[Device, str]) -> None:
    """Makes ``device`` (a :class:`Device` or a spec such as ``"cpu"``, ``"cuda:0"``) the module's
    default for later calls and new indexes; existing indexes stay on their device."""

def knn(
    xq: Array, xb: Array, k: int, metric: Optional[Metric] = None
) -> Tuple[Array, Array]:
    """The ``k`` nearest rows of ``xb`` for every row of ``xq`` (exact): ``(D, I)``, distances
    ``float32 [nq, k]`` best first and row numbers ``int64 [nq, k]`` (-1 where ``xb`` has fewer
    than ``k`` rows). ``metric`` defaults to squared L2. ``uint8`` arrays ``[n, bytes]`` are
    bit-packed binary vectors (FAISS's packing), searched by ``"hamming"`` (their default),
    ``"hamming-normalized"`` or ``"jaccard"``. NumPy in gives NumPy out; CUDA tensors
    (PyTorch, CuPy) are read in place and give tensors of the same kind on the same device,
    never copied through the host."""

class MultiIndex:
    """An index spread over several devices: ``layout="shards"`` (each device holds a part of
    the vectors; a search asks all and merges their best) or ``"replicas"`` (each holds every
    vector; a search splits its queries). ``devices``: device names (``"cuda:0"``, ``"cpu"``),
    a count of contexts on the module's device, or ``None`` for every CUDA device."""

    def __init__(
        self,
        d: int,
        description: str,
        metric: Optional[Union[str, int]] = None,
        *,
        layout: str = "shards",
        devices: Optional[Union[int, Sequence[str]]] = None,
    ) -> None: ...
    @property
    def d(self) -> int:
        """Dimension of the vectors."""
    @property
    def ntotal(self) -> int:
        """Vectors held, each counted once."""
    @property
    def part_sizes(self) -> List[int]:
        """Vectors held by each part."""
    @property
    def layout(self) -> str:
        """``"shards"`` or ``"replicas"``."""
    @property
    def is_trained(self) -> bool:
        """Whether the parts can take vectors."""
    @property
    def nprobe(self) -> int:
        """Lists scanned per query by default (IVF parts)."""
    @nprobe.setter
    def nprobe(self, n: int) -> None: ...
    def train(self, x: Array) -> None:
        """Trains the first part on ``x`` and copies its training to the others."""
    def add(self, x: Array) -> None:
        """Adds ``x [n, d]`` with sequential ids (shards: the emptiest parts take the most)."""
    def add_with_ids(self, x: Array, ids: npt.ArrayLike) -> None:
        """Adds ``x [n, d]`` under ``ids [n]`` (an id any part holds is a ValueError)."""
    def search(
        self,
        x: Array,
        k: int,
        *,
        nprobe: Optional[int] = None,
        refine_factor: Optional[int] = None,
        ef: Optional[int] = None,
        allowed: Optional[npt.ArrayLike] = None,
    ) -> Tuple[Array, Array]:
        """``(D, I)`` of the ``k`` nearest vectors of each row of ``x``, as :meth:`Index.search`."""
    def remove_ids(self, ids: npt.ArrayLike) -> int:
        """Removes the vectors of ``ids``; returns how many were removed."""
    def save(self, path: Union[str, PathLike]) -> None:
        """Writes the index to the folder ``path`` (a file per part, then a manifest)."""
    @staticmethod
    def load(
        path: Union[str, PathLike], *, devices: Optional[Union[int, Sequence[str]]] = None
    ) -> "MultiIndex":
        """Reads an index written by :meth:`save` onto ``devices``."""
    def __len__(self) -> int: ...

class DurableMultiIndex:
    """A :class:`MultiIndex` kept in a folder with write-ahead logs: shards each with their own
    log (an add goes whole to the emptiest shard), or replicas with one durable copy from which
    the others are remade when the folder is opened."""

    @staticmethod
    def create(
        path: str,
        index: MultiIndex,
        *,
        checkpoint_bytes: Optional[int] = None,
        sync_interval: Optional[float] = None,
    ) -> "DurableMultiIndex":
        """Makes a copy of ``index`` durable in the new folder ``path``."""
    @staticmethod
    def open(
        path: str,
        *,
        devices: Optional[Union[int, Sequence[str]]] = None,
        checkpoint_bytes: Optional[int] = None,
        sync_interval: Optional[float] = None,
    ) -> "DurableMultiIndex":
        """Opens the folder ``path`` on ``devices``, replaying each part's log."""
    @property
    def ntotal(self) -> int:
        """Vectors held, each counted once."""
    @property
    def part_sizes(self) -> List[int]:
        """Vectors held by each part."""
    def add(self, x: Array) -> None:
        """Adds ``x [n, d]`` with sequential ids, durably."""
    def add_with_ids(self, x: Array, ids: npt.ArrayLike) -> None:
        """Adds ``x [n, d]`` under ``ids [n]``, durably."""
    def remove_ids(self, ids: npt.ArrayLike) -> int:
        """Removes the vectors of ``ids``, durably; returns how many were held."""
    def search(
        self, x: Array, k: int, *, nprobe: Optional[int] = None, ef: Optional[int] = None
    ) -> Tuple[Array, Array]:
        """``(D, I)`` of the ``k`` nearest vectors of each row of ``x``."""
    def checkpoint(self) -> None:
        """Checkpoints every durable part."""
    def __len__(self) -> int: ...

class Index:
    """A vector index built by :func:`index_factory`, holding vectors under ``int64`` ids."""

    def __init__(self, d: int = 1, description: str = "Flat") -> None:
        """An empty L2 index (use :func:`index_factory` to choose the metric)."""
    @property
    def d(self) -> int:
        """Dimension of the vectors."""
    @property
    def ntotal(self) -> int:
        """Vectors held."""
    @property
    def is_trained(self) -> bool:
        """Whether the index can take vectors (IVF indexes after :meth:`train`)."""
    @property
    def nprobe(self) -> int:
        """Lists scanned per query by default (IVF indexes)."""
    @nprobe.setter
    def nprobe(self, n: int) -> None: ...
    @property
    def metric(self) -> str:
        """The metric's name (``"l2"``, ``"ip"``, ``"cosine"``, ...)."""
    @property
    def factory(self) -> str:
        """The factory string (the number of lists filled in once trained)."""
    def train(self, x: Array) -> None:
        """Trains the coarse quantizer (and the list codec) on ``x [n, d]``."""
    def add(self, x: Array) -> None:
        """Adds ``x [n, d]`` with sequential ids."""
    def add_with_ids(self, x: Array, ids: npt.ArrayLike) -> None:
        """Adds ``x [n, d]`` under ``ids [n]`` (non-negative; a repeated id is a ValueError)."""
    def search(
        self,
        x: Array,
        k: int,
        *,
        nprobe: Optional[int] = None,
        refine_factor: Optional[int] = None,
        ef: Optional[int] = None,
        allowed: Optional[npt.ArrayLike] = None,
        precision: Optional[str] = None,
    ) -> Tuple[Array, Array]:
        """The ``k`` nearest vectors of each row of ``x``: ``(D, I)``. ``precision="f16"`` or
        ``"int8"`` walks a graph index over f16 copies or 8-bit codes of the vectors on CUDA,
        re-scored in fp32. ``ef`` is a graph index's
        candidate list while it walks the graph (FAISS's ``efSearch``). ``allowed`` (an id array)
        restricts the results to those ids; ``k`` results come back whenever ``k`` of them are
        held. CUDA tensor queries are read in place and the results come back as tensors of the
        same kind on the same device (made on the host, where ids are mapped, then copied)."""
    def range_search(
        self, x: Array, radius: float, *, nprobe: Optional[int] = None
    ) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Every vector within ``radius`` of each row of ``x``: ``(lims, D, I)``, the results of
        row ``i`` at ``lims[i]:lims[i + 1]``, best first."""
    def remove_ids(self, ids: npt.ArrayLike) -> int:
        """Removes the vectors of ``ids``; returns how many were removed."""
    def reconstruct(self, id: int) -> npt.NDArray[np.float32]:
        """The stored vector of ``id`` (decoded codes for SQ/PQ lists without Refine)."""
    def __len__(self) -> int: ...
    def __getstate__(self) -> bytes: ...
    def __setstate__(self, state: bytes) -> None: ...

def index_factory(d: int, description: str, metric: Optional[Metric] = None) -> Index:
    """An empty index from a factory string: ``"Flat"``, ``"IVF4096,Flat"``, ``"IVF4096,SQ8"``,
    ``"IVF4096,PQ32x8,Refine"``, ``"Graph32"`` (a proximity graph of 32 neighbours per vector).
    ``metric`` defaults to L2."""

def write_index(index: Index, path: Union[str, PathLike]) -> None:
    """Writes ``index`` to ``path`` (checksummed; a temporary file renamed over it)."""

def read_index(path: Union[str, PathLike]) -> Index:
    """Reads an index written by :func:`write_index` onto the module's device."""

def kmeans(
    x: npt.ArrayLike, k: int, *, niter: int = 25, seed: int = 1234, spherical: bool = False
) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], float]:
    """k-means of the rows of ``x``: ``(centroids [k, d], assignments [n], inertia)``
    (k-means++ start, Lloyd iterations; cosine distance on unit centroids when ``spherical``)."""

class Kmeans:
    """FAISS's ``Kmeans``: ``Kmeans(d, k, niter=25)``, ``.train(x)``, then ``.centroids``,
    ``.obj`` and ``.assign(x)``."""

    obj: list
    def __init__(
        self, d: int, k: int, *, niter: int = 25, seed: int = 1234, spherical: bool = False
    ) -> None: ...
    def train(self, x: npt.ArrayLike) -> None:
        """Trains on the rows of ``x [n, d]``."""
    @property
    def centroids(self) -> Optional[npt.NDArray[np.float32]]:
        """The trained centroids ``[k, d]`` (None before training)."""
    def assign(self, x: npt.ArrayLike) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The nearest centroid of each row of ``x``: ``(D, I)`` with one column."""

def normalize(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The rows of ``x`` scaled to unit length (zero rows stay zero)."""

def gemm(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The matrix product ``a @ b`` (``a [m, k]``, ``b [k, n]``) in float32."""

class ProductQuantizer:
    """FAISS's ``ProductQuantizer(d, M, nbits)``: ``M`` sub-spaces of ``2^nbits`` centroids."""

    d: int
    M: int
    nbits: int
    def __init__(self, d: int, m: int, nbits: int = 8) -> None: ...
    @property
    def code_size(self) -> int:
        """Bytes of one row's code."""
    def train(self, x: npt.ArrayLike) -> None:
        """Trains the codebooks on ``x [n, d]`` (k-means per sub-space)."""
    def compute_codes(self, x: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """The codes of ``x [n, d]``: ``uint8 [n, code_size]``."""
    def decode(self, codes: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The vectors of ``codes [n, code_size]``: ``float32 [n, d]``."""

class ScalarQuantizer:
    """FAISS's ``ScalarQuantizer(d, "QT_8bit" | "QT_4bit")``: each dimension's training range in
    256 or 16 steps."""

    d: int
    def __init__(self, d: int, qtype: str = "QT_8bit") -> None: ...
    @property
    def code_size(self) -> int:
        """Bytes of one row's code."""
    def train(self, x: npt.ArrayLike) -> None:
        """Fits each dimension's range on ``x [n, d]``."""
    def compute_codes(self, x: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """The codes of ``x [n, d]``: ``uint8 [n, code_size]``."""
    def decode(self, codes: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The vectors of ``codes [n, code_size]``: ``float32 [n, d]``."""

def describe(
    x: npt.ArrayLike, axis: Optional[int] = None, *, ddof: int = 1, skip_nonfinite: bool = False
) -> dict:
    """Summary statistics along ``axis`` (``None`` every element, ``0`` per column, ``1`` per row)
    in one pass: a dict of float64 arrays ``count``, ``mean``, ``var``, ``std`` (with ``ddof``),
    ``min``, ``max``, ``skewness``, ``kurtosis`` (excess). Non-finite values are a ValueError
    unless ``skip_nonfinite``."""

def quantile(
    x: npt.ArrayLike,
    q: Union[float, npt.ArrayLike],
    axis: Optional[int] = None,
    *,
    skip_nonfinite: bool = False,
) -> Any:
    """Quantiles at levels ``q`` in [0, 1] (linear interpolation) as ``np.quantile``: shape
    ``[len(q)]`` for ``axis=None``, ``[len(q), n]`` otherwise; a scalar ``q`` drops that axis."""

def median(x: npt.ArrayLike, axis: Optional[int] = None, *, skip_nonfinite: bool = False) -> Any:
    """The median along ``axis`` (``quantile(x, 0.5, axis)``)."""

def cov(x: npt.ArrayLike, ddof: int = 1) -> npt.NDArray[np.float32]:
    """Covariance of the columns of ``x [n, d]``: ``float32 [d, d]`` as
    ``np.cov(x, rowvar=False, ddof=ddof)``."""

def corrcoef(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Pearson correlation of the columns of ``x [n, d]``: ``float32 [d, d]`` as
    ``np.corrcoef(x, rowvar=False)``."""

def histogram(
    x: npt.ArrayLike,
    bins: Union[int, npt.ArrayLike, None] = None,
    range: Optional[Tuple[float, float]] = None,
    density: bool = False,
) -> Tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """``(counts int64, edges float64)`` as ``np.histogram`` (``bins`` a count, 10 by default, or
    the edges); densities instead of counts with ``density``. Values outside the bins and
    non-finite values are left out."""

def histogram2d(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    bins: Any = None,
    range: Optional[Tuple[Tuple[float, float], Tuple[float, float]]] = None,
    density: bool = False,
) -> Tuple[npt.NDArray[Any], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(H, xedges, yedges)`` of the pairs ``(x[i], y[i])`` as ``np.histogram2d``."""

class DurableIndex:
    """An index kept in a directory with a write-ahead log: every acknowledged ``add``,
    ``add_with_ids`` and ``remove_ids`` survives a crash. Calls release the GIL, so threads can
    search while others write; a search sees whole operations only."""

    @staticmethod
    def create(path: str, index: Index, *, checkpoint_bytes: Optional[int] = None, sync_interval: Optional[float] = None) -> "DurableIndex":
        """Makes a copy of ``index`` durable in the new directory ``path``. ``sync_interval``
        (seconds) picks the weaker policy: a write returns once written to the operating system
        and the log is synced in the background at that interval, so a power loss can lose the
        last interval's writes (a process crash loses none). By default every write is synced
        before it returns."""
    @staticmethod
    def open(path: str, *, checkpoint_bytes: Optional[int] = None, sync_interval: Optional[float] = None) -> "DurableIndex":
        """Opens ``path`` on the default device: the newest snapshot plus its log replayed (a torn
        final record is cut and reported in :attr:`recovery`; other damage is an error)."""
    @property
    def recovery(self) -> Optional[dict]:
        """What ``open`` found: ``snapshot_seq``, ``replayed``, ``torn`` (file, offset, reason)."""
    @property
    def ntotal(self) -> int:
        """Vectors held."""
    @property
    def d(self) -> int:
        """Dimension of the vectors."""
    def add(self, x: Array) -> None:
        """Adds ``x [n, d]`` with sequential ids, durably (synced before it returns)."""
    def add_with_ids(self, x: Array, ids: npt.ArrayLike) -> None:
        """Adds ``x [n, d]`` under ``ids [n]``, durably."""
    def remove_ids(self, ids: npt.ArrayLike) -> int:
        """Removes the vectors of ``ids``, durably; returns how many were held."""
    def search(self, x: Array, k: int, *, nprobe: Optional[int] = None) -> Tuple[Array, Array]:
        """The ``k`` nearest vectors of each row of ``x``: ``(D, I)``."""
    def checkpoint(self) -> None:
        """Writes a snapshot and drops the log before it."""
