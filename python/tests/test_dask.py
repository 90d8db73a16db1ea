"""vector_accelerate.dask: shards built on the workers of a local Dask cluster (separate
processes), searched from the client, against one index over all the vectors."""
import numpy as np
import pytest

import vector_accelerate as va

distributed = pytest.importorskip("dask.distributed")
from vector_accelerate.dask import build_shards, merge_results  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("factory,metric", [("Flat", None), ("IVF8,Flat", None), ("Flat", "ip")])
def test_dask_shards_answer_as_one_index(client, factory, metric):
    xb, xq = data(1200, 10, 5), data(17, 10, 6)
    blocks = [xb[:500], xb[500:900], xb[900:]]
    shards = build_shards(client, blocks, factory, metric=metric, train=xb)
    assert shards.ntotal == 1200
    single = va.index_factory(10, factory, metric)
    single.train(xb)
    single.add(xb)
    D0, I0 = single.search(xq, 7, nprobe=3)
    D1, I1 = shards.search(xq, 7, nprobe=3)
    np.testing.assert_array_equal(I1, I0)
    np.testing.assert_allclose(D1, D0, rtol=1e-5, atol=1e-5)


def test_dask_shards_take_ids_and_futures(client):
    xb = data(300, 4, 7)
    blocks = client.scatter([xb[:100], xb[100:]])
    ids = [np.arange(100) + 10_000, np.arange(200) + 20_000]
    shards = build_shards(client, blocks, "Flat", ids=ids)
    D, I = shards.search(xb[[5, 150]], 1)
    assert I[:, 0].tolist() == [10_005, 20_050]
    with pytest.raises(ValueError):
        shards.search(data(2, 3, 8), 1)


def test_merge_keeps_the_best_and_puts_missing_last():
    a = (np.array([[0.1, 0.5, np.inf]], np.float32), np.array([[1, 2, -1]]))
    b = (np.array([[0.1, 0.3, 0.9]], np.float32), np.array([[7, 8, 9]]))
    D, I = merge_results([a, b], 4)
    assert I.tolist() == [[1, 7, 8, 2]] and D[0, 0] == np.float32(0.1)
    D, I = merge_results([a, b], 4, largest_first=True)
    assert I.tolist() == [[9, 2, 8, 1]]
