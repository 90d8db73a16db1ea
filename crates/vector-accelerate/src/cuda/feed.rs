//! Host rows streamed to the device tile by tile with the transfers
//! overlapped with compute: a background thread copies each tile into
//! page-locked (pinned) host memory and starts its transfer on the device's
//! copy stream into one of two device buffers, while the compute stream
//! works on the tile before. Events order the two streams: the compute
//! stream waits for a tile's transfer, the copy stream for the compute
//! stream to release a buffer before refilling it.

use std::ops::Range;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::Scope;

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaEvent, DevicePtrMut, PinnedHostSlice};

use crate::core::error::{cu, Error, Result};
use crate::cuda::distance::{per_row, staging};
use crate::runtime::cuda_device::{send_staged, CudaDevice};
use crate::runtime::cuda_rows::{CudaRows, RowsRef};
use crate::runtime::input::Input;

/// Buffers in flight: one being computed on, the next ones being filled,
/// so that staging never waits for the compute of the tile just before.
pub(crate) const DEPTH: usize = 3;

/// Bytes staged per transfer: the copy into pinned memory of one chunk
/// overlaps the transfer of the chunk before.
const CHUNK: usize = 32 << 20;

/// Whether `bytes` lie in page-locked host memory known to CUDA (allocated
/// or registered with it, e.g. a [`PinnedMatrix`](crate::PinnedMatrix)):
/// such rows are transferred directly, without the staging copy.
fn is_pinned(bytes: &[u8]) -> bool {
    use cudarc::driver::sys::{cuPointerGetAttribute, CUmemorytype, CUpointer_attribute};
    let ptr = bytes.as_ptr() as CUdeviceptr;
    let mut kind: u32 = 0;
    let (mut start, mut size): (CUdeviceptr, usize) = (0, 0);
    // SAFETY: out-pointers of the sizes the attributes write; a host
    // pointer CUDA does not know makes the calls fail, not crash.
    unsafe {
        cuPointerGetAttribute(
            (&mut kind as *mut u32).cast(),
            CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
            ptr,
        )
        .result()
        .is_ok()
            && kind == CUmemorytype::CU_MEMORYTYPE_HOST as u32
            && cuPointerGetAttribute(
                (&mut start as *mut CUdeviceptr).cast(),
                CUpointer_attribute::CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                ptr,
            )
            .result()
            .is_ok()
            && cuPointerGetAttribute(
                (&mut size as *mut usize).cast(),
                CUpointer_attribute::CU_POINTER_ATTRIBUTE_RANGE_SIZE,
                ptr,
            )
            .result()
            .is_ok()
            && ptr + bytes.len() as CUdeviceptr <= start + size as CUdeviceptr
    }
}

/// The consumer's end: tiles arrive in the order they were listed.
pub(crate) struct Feed {
    bufs: Vec<CudaRows>,
    ready: Receiver<Result<CudaEvent>>,
    free: Sender<CudaEvent>,
    next: usize,
    per_row: usize,
    tiles: Vec<(usize, usize)>,
}

/// The host input as bytes, `row_bytes` per row.
fn host_bytes<'a>(x: &Input<'a>) -> Result<&'a [u8]> {
    match x {
        Input::F32(m) => Ok(bytemuck::cast_slice(m.as_slice())),
        Input::Binary(b) => Ok(bytemuck::cast_slice(b.as_words())),
        Input::Resident(_) => Err(Error::Cuda {
            op: "feed",
            message: "a resident input is not streamed".into(),
        }),
    }
}

impl Feed {
    /// Starts streaming `tiles` (row ranges, each at most `max_rows` rows)
    /// of the host input `x` on a thread of `scope`.
    pub(crate) fn start<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        dev: &'env CudaDevice,
        x: &Input<'env>,
        tiles: &[(usize, usize)],
        max_rows: usize,
    ) -> Result<Self> {
        let src = host_bytes(x)?;
        let pr = per_row(x);
        let row_bytes = src.len() / x.rows().max(1);
        let mut bufs = Vec::with_capacity(DEPTH);
        let mut ptrs: Vec<CUdeviceptr> = Vec::with_capacity(DEPTH);
        let mut pinned: Vec<PinnedHostSlice<u8>> = Vec::with_capacity(DEPTH);
        for _ in 0..DEPTH {
            let mut b = staging(dev, x, max_rows)?;
            ptrs.push(match &mut b {
                CudaRows::F32(s) => s.device_ptr_mut(&dev.stream).0,
                CudaRows::Bits(s) => s.device_ptr_mut(&dev.stream).0,
            });
            bufs.push(b);
            // SAFETY: the bytes are written before any transfer reads them.
            // (Write-combined: written here, read only by the transfers.)
            let p = unsafe { dev.context().alloc_pinned::<u8>(max_rows * row_bytes) }
                .map_err(cu("cuMemHostAlloc (pinned staging)"))?;
            pinned.push(p);
        }
        // The copy stream may use the buffers once their allocation (on the
        // compute stream) is done.
        let allocated = dev.stream.record_event(None).map_err(cu("cuEventRecord"))?;
        dev.copy_stream
            .wait(&allocated)
            .map_err(cu("cuStreamWaitEvent"))?;
        let (ready_tx, ready) = channel::<Result<CudaEvent>>();
        let (free, free_rx) = channel::<CudaEvent>();
        let stager = Stager {
            dev,
            src,
            row_bytes,
            ptrs,
            pinned,
            direct: is_pinned(src),
            copied: (0..DEPTH).map(|_| None).collect(),
        };
        let plan: Vec<(usize, usize)> = tiles.to_vec();
        scope.spawn(move || stager.run(&plan, &ready_tx, &free_rx));
        Ok(Self {
            bufs,
            ready,
            free,
            next: 0,
            per_row: pr,
            tiles: tiles.to_vec(),
        })
    }

    /// The next tile's rows, once (in compute-stream order) its transfer is
    /// done. Call [`release`](Self::release) when its work is enqueued.
    pub(crate) fn next(&mut self, dev: &CudaDevice) -> Result<RowsRef<'_>> {
        let e = self.ready.recv().map_err(|_| Error::Cuda {
            op: "feed",
            message: "the staging thread stopped".into(),
        })??;
        dev.stream.wait(&e).map_err(cu("cuStreamWaitEvent"))?;
        let (x0, x1) = self.tiles[self.next];
        Ok(self.bufs[self.next % DEPTH].rows(0, x1 - x0, self.per_row))
    }

    /// The compute stream's work on the current tile is enqueued: its
    /// buffer may be refilled once that work is done.
    pub(crate) fn release(&mut self, dev: &CudaDevice) -> Result<()> {
        let done = dev.stream.record_event(None).map_err(cu("cuEventRecord"))?;
        self.next += 1;
        // A closed channel means the thread has no tiles left to stage.
        let _ = self.free.send(done);
        Ok(())
    }
}

/// The staging thread's side of a [`Feed`].
struct Stager<'env> {
    /// The device (its copy stream).
    dev: &'env CudaDevice,
    /// The host rows, `row_bytes` per row.
    src: &'env [u8],
    /// Bytes per row.
    row_bytes: usize,
    /// The device buffers' addresses.
    ptrs: Vec<CUdeviceptr>,
    /// Pinned staging, one per device buffer.
    pinned: Vec<PinnedHostSlice<u8>>,
    /// Whether `src` is page-locked itself (transferred without staging).
    direct: bool,
    /// Per buffer, an event after its last transfer.
    copied: Vec<Option<CudaEvent>>,
}

impl Stager<'_> {
    /// Stages the tiles `plan` in turn, then waits for the transfers that
    /// still read the source or the pinned buffers.
    fn run(
        mut self,
        plan: &[(usize, usize)],
        ready: &Sender<Result<CudaEvent>>,
        free: &Receiver<CudaEvent>,
    ) {
        if let Err(e) = self.produce(plan, ready, free) {
            let _ = ready.send(Err(e));
        }
        // The source is borrowed only until the transfers are done.
        if self.direct {
            let _ = self.dev.copy_stream.synchronize();
        }
        // The pinned buffers are freed here, after their transfers.
        for e in self.copied.iter().flatten() {
            let _ = e.synchronize();
        }
        drop(self.pinned);
    }

    /// Each tile's transfer into the next buffer once the compute stream
    /// has released it; stops early when the consumer does.
    fn produce(
        &mut self,
        plan: &[(usize, usize)],
        ready: &Sender<Result<CudaEvent>>,
        free: &Receiver<CudaEvent>,
    ) -> Result<()> {
        let dev = self.dev;
        dev.context()
            .bind_to_thread()
            .map_err(cu("cuCtxSetCurrent"))?;
        for (j, &(x0, x1)) in plan.iter().enumerate() {
            let b = j % DEPTH;
            if j >= DEPTH {
                // The compute stream is done with buffer b...
                let Ok(done) = free.recv() else {
                    return Ok(()); // the consumer stopped
                };
                dev.copy_stream
                    .wait(&done)
                    .map_err(cu("cuStreamWaitEvent"))?;
            }
            // ...and its last transfer has left the pinned buffer.
            if let Some(e) = self.copied[b].take() {
                e.synchronize().map_err(cu("cuEventSynchronize"))?;
            }
            self.transfer(b, x0 * self.row_bytes..x1 * self.row_bytes)?;
            let e = dev
                .copy_stream
                .record_event(None)
                .map_err(cu("cuEventRecord"))?;
            let e2 = dev
                .copy_stream
                .record_event(None)
                .map_err(cu("cuEventRecord"))?;
            self.copied[b] = Some(e2);
            if ready.send(Ok(e)).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Starts the transfer of the source bytes `range` into buffer `b`, in
    /// chunks: directly from page-locked rows, else each chunk copied into
    /// pinned staging first.
    fn transfer(&mut self, b: usize, range: Range<usize>) -> Result<()> {
        let (dev, ptr) = (self.dev, self.ptrs[b]);
        let bytes = &self.src[range];
        if self.direct {
            for (c, s) in bytes.chunks(CHUNK).enumerate() {
                // SAFETY: page-locked host bytes borrowed for the call;
                // device rows as below.
                unsafe {
                    cudarc::driver::result::memcpy_htod_async(
                        ptr + (c * CHUNK) as CUdeviceptr,
                        s,
                        dev.copy_stream.cu_stream(),
                    )
                }
                .map_err(cu("cuMemcpyHtoDAsync (page-locked rows)"))?;
            }
            return Ok(());
        }
        let dst = self.pinned[b]
            .as_mut_slice()
            .map_err(cu("pinned staging"))?;
        // SAFETY: the buffer holds max_rows rows; the pinned bytes stay
        // untouched until `copied[b]` completes.
        unsafe {
            send_staged(
                bytes,
                dst,
                (ptr, &dev.copy_stream),
                (CHUNK, 1 << 20),
                "cuMemcpyHtoDAsync (pinned)",
            )
        }?;
        Ok(())
    }
}
