"""Writes the small HDF5 fixtures of the CLI's HDF5 reader tests.

Run from this folder with h5py and numpy installed:

    python3 make_hdf5_fixtures.py

The values follow formulas that the Rust tests recompute (see
`src/io/hdf5/tests.rs`), so the tests need no Python:

    vectors  v[i, j] = 0.25 * (i * cols + j) - 3        (float32, exact)
    ids      n[i, j] = (7 * (i * cols + j)) % 101 - 1   (int32; -1 appears)

The committed files were written by h5py 3.16 on HDF5 2.0 (whose
libver="latest" writes version 5 layout messages for filtered chunks).
fs_strategy="none" keeps the newest-format file small; it changes where
things are, not how they are encoded. Running it again changes only the
timestamps (and checksums) of the newest-format file.
"""

import h5py
import numpy as np


def vectors(rows, cols, dtype=np.float32):
    return (0.25 * np.arange(rows * cols).reshape(rows, cols) - 3).astype(dtype)


def ids(rows, cols, dtype=np.int32):
    return ((7 * np.arange(rows * cols).reshape(rows, cols)) % 101 - 1).astype(dtype)


def ann_datasets(f):
    """The ann-benchmarks datasets, in contiguous, chunked and chunked +
    gzip layouts (chunks that do not divide the shape)."""
    f.attrs["distance"] = "euclidean"
    f.attrs["point_type"] = "float"
    f.create_dataset("train", data=vectors(7, 5))
    f.create_dataset("test", data=vectors(5, 5), chunks=(2, 3))
    f.create_dataset("neighbors", data=ids(5, 4), chunks=(2, 4), compression="gzip")


def main():
    # h5py's defaults, as ann-benchmarks writes its files: superblock 0,
    # version 1 object headers, symbol-table groups, B-tree chunk index.
    with h5py.File("ann-v0.hdf5", "w") as f:
        ann_datasets(f)
    # The newest format: superblock 3, version 2 object headers, link
    # messages, single-chunk, fixed-array and extensible-array chunk
    # indexes, gzip with shuffle; and the other element types in a group.
    with h5py.File("ann-latest.hdf5", "w", libver="latest", fs_strategy="none") as f:
        ann_datasets(f)
        f.create_dataset(
            "distances", data=vectors(5, 4), chunks=(3, 3), compression="gzip", shuffle=True
        )
        f.create_dataset("one-chunk", data=ids(3, 2), chunks=(3, 2), compression="gzip")
        f.create_dataset("growable", data=vectors(2, 2), maxshape=(None, 2))
        g = f.create_group("extra")
        g.create_dataset("f64", data=vectors(2, 3, np.float64))
        g.create_dataset("i64", data=ids(2, 3, np.int64))
        g.create_dataset("u8", data=np.arange(6, dtype=np.uint8).reshape(2, 3) * 40)
        g.create_dataset("i8", data=np.arange(6, dtype=np.int8).reshape(2, 3) * -20)
        g.create_dataset("big-endian", data=vectors(2, 3, ">f4"))
        g.create_dataset("flat", data=np.arange(4, dtype=np.float32))
    # A copy of the first file cut short, as an interrupted download leaves it.
    with open("ann-v0.hdf5", "rb") as f:
        head = f.read(4000)
    with open("ann-v0-truncated.hdf5", "wb") as f:
        f.write(head)


if __name__ == "__main__":
    main()
