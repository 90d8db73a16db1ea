"""DurableIndex from Python: writes survive reopening, threads search while others write."""
import threading

import numpy as np
import pytest

import vector_accelerate as va


def test_writes_survive_reopening(tmp_path):
    r = np.random.default_rng(0)
    x = r.standard_normal((300, 16)).astype(np.float32)
    idx = va.index_factory(16, "Flat")
    idx.add(x[:100])
    d = va.DurableIndex.create(str(tmp_path / "d"), idx)
    assert d.recovery is None and d.ntotal == 100 and idx.ntotal == 100
    d.add(x[100:200])
    d.add_with_ids(x[200:], np.arange(1000, 1100))
    assert d.remove_ids(np.array([0, 1, 1000, 5000])) == 3
    D0, I0 = d.search(x[:10], 3)
    del d
    back = va.DurableIndex.open(str(tmp_path / "d"))
    assert back.recovery == {"snapshot_seq": 0, "replayed": 3, "torn": None}
    assert back.ntotal == 297 and repr(back).startswith("DurableIndex(")
    D, I = back.search(x[:10], 3)
    np.testing.assert_array_equal(I, I0)
    back.checkpoint()
    with pytest.raises(ValueError):
        back.add_with_ids(x[:1], np.array([1001]))  # already held
    with pytest.raises(va.VectorAccelerateError):
        va.DurableIndex.open(str(tmp_path / "missing"))


def test_threads_search_while_others_write(tmp_path):
    r = np.random.default_rng(1)
    x = r.standard_normal((2000, 8)).astype(np.float32)
    d = va.DurableIndex.create(str(tmp_path / "t"), va.index_factory(8, "Flat"))
    errors = []

    def writer(t):
        try:
            for b in range(25):
                lo = t * 500 + b * 20
                d.add_with_ids(x[lo:lo + 20], np.arange(lo, lo + 20))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def reader():
        try:
            for _ in range(20):
                n = d.ntotal
                assert n % 20 == 0
                if n:
                    d.search(x[:5], 2)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert d.ntotal == 2000
    _, I = d.search(x, 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(2000))


def test_an_interval_sync_policy_keeps_every_write(tmp_path):
    r = np.random.default_rng(1)
    x = r.standard_normal((50, 8)).astype(np.float32)
    d = va.DurableIndex.create(str(tmp_path / "i"), va.index_factory(8, "Flat"), sync_interval=0.01)
    for i in range(50):
        d.add(x[i : i + 1])
    del d
    back = va.DurableIndex.open(str(tmp_path / "i"), sync_interval=0.5)
    assert back.ntotal == 50
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sync_interval"):
            va.DurableIndex.open(str(tmp_path / "i"), sync_interval=bad)
