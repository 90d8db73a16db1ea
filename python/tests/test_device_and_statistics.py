"""The Device object and module default, and statistics/histograms against NumPy."""
import numpy as np
import pytest

import vector_accelerate as va


def test_device_object_and_default():
    cpu = va.Device("cpu")
    assert (cpu.type, cpu.index, str(cpu)) == ("cpu", None, "cpu")
    assert repr(cpu).startswith("Device('cpu'") and cpu.memory_budget > 0
    assert cpu == va.Device("cpu") and hash(cpu) == hash(va.Device("cpu"))
    assert "cpu_threads" in cpu.info()
    before = va.device()
    with va.Device("cpu") as d:
        assert d is not None and va.device() == "cpu"
        assert "device=cpu" in repr(va.index_factory(4, "Flat"))
    assert va.device() == before
    va.set_device("cpu")
    assert va.get_device() == cpu
    va.set_device(va.Device("auto"))
    assert va.device() == before or before == "cpu"
    with pytest.raises(ValueError):
        va.Device("tpu:0")


def test_budgeted_device_gives_the_same_results():
    r = np.random.default_rng(0)
    xb, xq = r.standard_normal((3000, 16), np.float32), r.standard_normal((50, 16), np.float32)
    D0, I0 = va.knn(xq, xb, 5)
    with va.Device("auto", memory_budget=1 << 20):
        D, I = va.knn(xq, xb, 5)
    np.testing.assert_array_equal(I, I0)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_describe_matches_numpy(axis):
    x = np.random.default_rng(1).standard_normal((101, 7)).astype(np.float32)
    s = va.describe(x, axis)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(s["mean"], np.atleast_1d(x64.mean(axis=axis)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["std"], np.atleast_1d(x64.std(axis=axis, ddof=1)), rtol=1e-5)
    np.testing.assert_array_equal(s["min"], np.atleast_1d(x.min(axis=axis)))
    np.testing.assert_array_equal(s["count"], np.atleast_1d(np.ones_like(x).sum(axis=axis)))
    c = x64 - x64.mean(axis=axis, keepdims=True)
    m2, m3 = (c**2).mean(axis=axis), (c**3).mean(axis=axis)
    np.testing.assert_allclose(s["skewness"], np.atleast_1d(m3 / m2**1.5), rtol=1e-4, atol=1e-6)


def test_describe_refuses_nan_unless_skipped():
    x = np.array([1.0, np.nan, 3.0], np.float32)
    with pytest.raises(ValueError):
        va.describe(x)
    s = va.describe(x, skip_nonfinite=True)
    assert s["count"][0] == 2 and s["mean"][0] == 2.0


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_quantile_and_median_match_numpy(axis):
    x = np.random.default_rng(2).standard_normal((53, 6)).astype(np.float32)
    q = [0.0, 0.1, 0.5, 0.99, 1.0]
    np.testing.assert_allclose(va.quantile(x, q, axis), np.quantile(x.astype(np.float64), q, axis=axis), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(va.median(x, axis), np.median(x.astype(np.float64), axis=axis), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        va.quantile(x, 1.5)


def test_cov_and_corrcoef_match_numpy():
    x = np.random.default_rng(3).standard_normal((200, 5)).astype(np.float32)
    np.testing.assert_allclose(va.cov(x), np.cov(x.astype(np.float64), rowvar=False), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(va.cov(x, ddof=0), np.cov(x.astype(np.float64), rowvar=False, ddof=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(va.corrcoef(x), np.corrcoef(x.astype(np.float64), rowvar=False), rtol=1e-4, atol=1e-5)


def test_histograms_match_numpy():
    r = np.random.default_rng(4)
    x = r.standard_normal(10007).astype(np.float32)
    for bins, rng in [(10, None), (7, (-1.0, 2.0)), ([-3.0, -1.0, 0.0, 0.5, 4.0], None)]:
        c, e = va.histogram(x, bins, rng)
        c0, e0 = np.histogram(x, bins, rng)
        np.testing.assert_allclose(e, e0, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(c, c0)
    d, e = va.histogram(x, 12, density=True)
    np.testing.assert_allclose(d, np.histogram(x, 12, density=True)[0], rtol=1e-5)
    y = r.standard_normal(10007).astype(np.float32)
    H, xe, ye = va.histogram2d(x, y, 8, [(-2.0, 2.0), (-1.0, 3.0)])
    H0, xe0, ye0 = np.histogram2d(x, y, 8, [(-2.0, 2.0), (-1.0, 3.0)])
    np.testing.assert_array_equal(H, H0)
    np.testing.assert_allclose(ye, ye0)
    H, _, _ = va.histogram2d(x, y, (4, [-1.0, 0.0, 1.0]))
    assert H.shape == (4, 2)


def test_reprs_say_what_an_object_is():
    assert repr(va.Kmeans(8, 4)).startswith("Kmeans(d=8, k=4")
    assert "trained=False" in repr(va.ProductQuantizer(8, 2, 8))
    assert repr(va.ScalarQuantizer(8, "QT_8bit")).startswith("ScalarQuantizer(d=8")
    assert repr(va.index_factory(8, "Flat")).startswith("Index('Flat'")
