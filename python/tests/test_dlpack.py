"""Arrays passed through DLPack: host tensors (any `__dlpack__` object) here;
PyTorch and CuPy CUDA tensors in test_gpu_tensors.py on a GPU host."""
import numpy as np
import pytest

import vector_accelerate as va


class DLPackOnly:
    """A host array seen only through DLPack, as a framework's tensor is."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, *, stream=None, **kwargs):
        return self.a.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_dlpack_objects_give_the_numpy_results(dtype):
    r = np.random.default_rng(3)
    xb = r.standard_normal((257, 19)).astype(dtype)
    xq = r.standard_normal((33, 19)).astype(dtype)
    D0, I0 = va.knn(xq, xb, 7)
    D, I = va.knn(DLPackOnly(xq), DLPackOnly(xb), 7)
    assert isinstance(D, np.ndarray) and isinstance(I, np.ndarray)
    np.testing.assert_array_equal(I, I0)
    np.testing.assert_array_equal(D, D0)


def test_host_dlpack_objects_feed_an_index():
    r = np.random.default_rng(4)
    xb = r.standard_normal((500, 8)).astype(np.float32)
    idx = va.index_factory(8, "Flat")
    idx.add(DLPackOnly(xb))
    D, I = idx.search(DLPackOnly(xb[:5]), 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(5))


def test_host_dlpack_with_the_wrong_rank_is_a_value_error():
    with pytest.raises(ValueError, match="2-D"):
        va.knn(DLPackOnly(np.zeros(5, np.float32)), np.zeros((3, 5), np.float32), 1)


def test_the_export_class_is_not_made_from_python():
    with pytest.raises(TypeError):
        va.DLPackTensor()
