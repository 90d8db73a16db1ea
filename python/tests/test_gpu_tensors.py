"""PyTorch and CuPy CUDA tensors in and out without a host copy (runs on a
GPU host with PyTorch; skipped elsewhere)."""
import numpy as np
import pytest

import vector_accelerate as va

torch = pytest.importorskip("torch")
if not torch.cuda.is_available() or not va.device().startswith("cuda"):
    pytest.skip("needs a CUDA device and PyTorch with CUDA", allow_module_level=True)


def data(nq=300, nb=20011, d=67, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal((nq, d)).astype(np.float32),
            r.standard_normal((nb, d)).astype(np.float32))


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_torch_cuda_in_gives_torch_cuda_out_equal_to_numpy(metric):
    xq, xb = data()
    D0, I0 = va.knn(xq, xb, 10, metric=metric)
    tq, tb = torch.from_numpy(xq).cuda(), torch.from_numpy(xb).cuda()
    D, I = va.knn(tq, tb, 10, metric=metric)
    assert isinstance(D, torch.Tensor) and D.is_cuda and D.device == tq.device
    assert I.dtype == torch.int64 and D.dtype == torch.float32 and D.shape == (300, 10)
    np.testing.assert_array_equal(I.cpu().numpy(), I0)
    np.testing.assert_array_equal(D.cpu().numpy(), D0)


@pytest.mark.parametrize("base", ["gaussian", "duplicates"])
def test_results_never_pass_through_the_host(base):
    """Profiles one call on a base large enough for the tiled, filtered
    path: the library's kernels run and nothing is copied between host and
    device in either direction (the filter's pass choices are made on the
    device, also when duplicates overflow every pass); the results stay on
    the device."""
    import json
    import tempfile
    from torch.profiler import ProfilerActivity, profile
    xq, xb = data()
    if base == "duplicates":
        xb = np.repeat(xb[:7], len(xb) // 7 + 1, axis=0)[: len(xb)]
    tq, tb = torch.from_numpy(xq).cuda(), torch.from_numpy(xb).cuda()
    va.knn(tq, tb, 10)  # kernels compiled and cached before profiling
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        D, I = va.knn(tq, tb, 10)
        torch.cuda.synchronize()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        events = json.load(open(f.name))["traceEvents"]
    names = [e.get("name", "") for e in events]
    kernels = [n for n in names if n.startswith("va_") or "topk" in n or "gemm" in n.lower()]
    copies = [e for e in events if e.get("cat") == "gpu_memcpy"]
    by_kind = {}
    for e in copies:
        kind = e["name"].split(" (")[0]
        by_kind.setdefault(kind, []).append(int(e.get("args", {}).get("bytes", -1)))
    print("profiled: %d kernel launches of ours; copies (bytes each): %s" % (len(kernels), by_kind))
    print("result data pointers", hex(D.data_ptr()), hex(I.data_ptr()), "on", D.device)
    assert kernels, "the profiler saw none of the library's kernels"
    assert "Memcpy HtoD" not in by_kind
    assert "Memcpy DtoH" not in by_kind, by_kind


def test_result_pointers_are_device_memory():
    cupy = pytest.importorskip("cupy")
    xq, xb = data(nq=5)
    D, I = va.knn(torch.from_numpy(xq).cuda(), torch.from_numpy(xb).cuda(), 3)
    for t in (D, I):
        attrs = cupy.cuda.runtime.pointerGetAttributes(t.data_ptr())
        assert attrs.type == 2  # cudaMemoryTypeDevice


def test_cupy_in_gives_cupy_out():
    cupy = pytest.importorskip("cupy")
    xq, xb = data(nq=31, nb=4099, d=16)
    D0, I0 = va.knn(xq, xb, 5)
    D, I = va.knn(cupy.asarray(xq), cupy.asarray(xb), 5)
    assert isinstance(D, cupy.ndarray) and isinstance(I, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(I), I0)
    np.testing.assert_array_equal(cupy.asnumpy(D), D0)


def test_other_dtypes_and_layouts_are_converted_on_the_device():
    xq, xb = data(nq=40, nb=3001, d=32)
    D0, I0 = va.knn(xq, xb, 4)
    tq = torch.from_numpy(xq).cuda()
    tb = torch.from_numpy(np.asfortranarray(xb)).cuda().t().contiguous().t()  # column-major
    assert not tb.is_contiguous()
    D, I = va.knn(tq.double(), tb, 4)
    np.testing.assert_array_equal(I.cpu().numpy(), I0)
    tq.requires_grad_(True)
    D, I = va.knn(tq, tb.contiguous(), 4)
    np.testing.assert_array_equal(I.cpu().numpy(), I0)


def test_queries_written_on_another_stream_are_waited_for():
    xq, xb = data(nq=2000, nb=50021, d=64)
    tb = torch.from_numpy(xb).cuda()
    a = torch.from_numpy(xq).cuda()
    eye = torch.eye(64, device="cuda")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for _ in range(50):  # keep the stream busy while the call starts
            a = a @ eye
        D, I = va.knn(a, tb, 3)
        same = (I.cpu().numpy() == va.knn(xq, xb, 3)[1]).mean()
    assert same > 0.999, same


def test_index_reads_cuda_queries_and_returns_cuda_results():
    xq, xb = data(nq=64, nb=20000, d=32)
    idx = va.index_factory(32, "IVF64,Flat")
    tb = torch.from_numpy(xb).cuda()
    idx.train(tb)
    idx.add(tb)
    idx.nprobe = 64
    D0, I0 = idx.search(xq, 10)
    D, I = idx.search(torch.from_numpy(xq).cuda(), 10)
    assert D.is_cuda and I.is_cuda and I.dtype == torch.int64
    np.testing.assert_array_equal(I.cpu().numpy(), I0)


def test_many_calls_do_not_leak_device_memory():
    xq, xb = data(nq=100, nb=10007, d=32)
    tq, tb = torch.from_numpy(xq).cuda(), torch.from_numpy(xb).cuda()
    for _ in range(5):
        va.knn(tq, tb, 10)
    torch.cuda.synchronize()
    before = torch.cuda.mem_get_info()[0]
    for _ in range(200):
        D, I = va.knn(tq, tb, 10)
        del D, I
    torch.cuda.synchronize()
    after = torch.cuda.mem_get_info()[0]
    assert before - after < 64 << 20, (before, after)


def test_parameters_and_views_take_the_dlpack_path_with_the_same_results():
    xq, xb = data(nq=20, nb=2003, d=24)
    D0, I0 = va.knn(xq, xb, 3)
    tb = torch.nn.Parameter(torch.from_numpy(xb).cuda())
    tq = torch.from_numpy(np.concatenate([xq, xq], 1)).cuda()[:, :24]  # strided view
    D, I = va.knn(tq, tb, 3)
    assert isinstance(D, torch.Tensor) and D.is_cuda
    np.testing.assert_array_equal(I.cpu().numpy(), I0)
