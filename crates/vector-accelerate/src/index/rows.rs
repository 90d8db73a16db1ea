//! [`RowBlocks`]: exact `f32` vectors kept on the context's device, one
//! block per batch added, numbered by slot across the blocks.

use crate::core::error::{Error, Result};
use crate::core::matrix::Matrix;
use crate::core::metric::Distance;
use crate::core::neighbors::Neighbors;
use crate::ops::knn::{knn_with, KnnOptions};
use crate::ops::select::merge;
use crate::runtime::context::Context;
use crate::runtime::input::Input;
use crate::runtime::tensor::DeviceMatrix;

/// Rows in blocks; slot `s` is row `s - starts[b]` of the block `b` that
/// holds it.
#[derive(Debug)]
pub(crate) struct RowBlocks {
    blocks: Vec<DeviceMatrix>,
    starts: Vec<usize>,
    rows: usize,
    dim: usize,
}

impl RowBlocks {
    /// No rows, of dimension `dim`.
    pub fn new(dim: usize) -> Self {
        Self {
            blocks: Vec::new(),
            starts: Vec::new(),
            rows: 0,
            dim,
        }
    }
    /// One block holding `m` (no copy on a CPU context).
    pub fn from_matrix(ctx: &Context, m: Matrix) -> Result<Self> {
        let mut r = Self::new(m.dim());
        r.push_matrix(ctx, m)?;
        Ok(r)
    }
    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }
    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Bytes of vector data held.
    pub fn bytes(&self) -> usize {
        self.rows * self.dim * 4
    }
    /// The blocks, in slot order.
    pub fn blocks(&self) -> &[DeviceMatrix] {
        &self.blocks
    }

    /// Appends a copy of `data`'s rows as a new block.
    pub fn push(&mut self, ctx: &Context, data: &Input<'_>) -> Result<()> {
        self.push_block(ctx.upload(*data)?);
        Ok(())
    }
    /// Appends host rows as a new block (no copy on a CPU context).
    pub fn push_matrix(&mut self, ctx: &Context, m: Matrix) -> Result<()> {
        self.push_block(DeviceMatrix::place(ctx, m)?);
        Ok(())
    }
    fn push_block(&mut self, b: DeviceMatrix) {
        self.starts.push(self.rows);
        self.rows += b.rows();
        self.blocks.push(b);
    }

    /// The `k` nearest rows of every query by slot (exact, ties by the
    /// smaller slot).
    pub fn knn(
        &self,
        ctx: &Context,
        q: &Input<'_>,
        k: usize,
        dist: &Distance,
    ) -> Result<Neighbors> {
        let opts = KnnOptions::default().with_metric(dist);
        let mut parts = Vec::with_capacity(self.blocks.len());
        for (b, &start) in self.blocks.iter().zip(&self.starts) {
            let mut nn = knn_with(ctx, *q, b, k, &opts)?;
            nn.map_ids(|s| s + start as u64);
            parts.push(nn);
        }
        match parts.len() {
            0 => Err(Error::EmptyInput { what: "index" }),
            1 => Ok(parts.pop().expect("one part")),
            _ => merge(ctx, &parts, k),
        }
    }

    /// The rows of `slots` (ascending), copied to the host; consecutive
    /// slots are copied together.
    pub fn gather(&self, slots: &[usize]) -> Result<Matrix> {
        let mut out = Vec::with_capacity(slots.len() * self.dim);
        let mut i = 0;
        while i < slots.len() {
            let (b, first) = self.locate(slots[i]);
            let block_end = self.starts[b] + self.blocks[b].rows();
            let mut j = i + 1;
            while j < slots.len() && slots[j] == slots[j - 1] + 1 && slots[j] < block_end {
                j += 1;
            }
            let m = self.blocks[b].rows_to_host(first, first + (j - i))?;
            out.extend_from_slice(m.as_slice());
            i = j;
        }
        Matrix::new(out, self.dim)
    }

    /// The rows of `slots` (ascending) gathered on the context's device.
    pub fn gather_device(&self, ctx: &Context, slots: &[usize]) -> Result<DeviceMatrix> {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < slots.len() {
            let (b, _) = self.locate(slots[i]);
            let (start, end) = (self.starts[b], self.starts[b] + self.blocks[b].rows());
            let n = slots[i..].partition_point(|&s| s < end);
            let local: Vec<u64> = slots[i..i + n]
                .iter()
                .map(|&s| (s - start) as u64)
                .collect();
            let block = Input::Resident(&self.blocks[b]);
            parts.push(ctx.backend().gather_rows(&block, &local)?);
            i += n;
        }
        match parts.len() {
            1 => Ok(parts.pop().expect("one part")),
            _ => DeviceMatrix::concat(ctx, &parts.iter().collect::<Vec<_>>(), self.dim),
        }
    }

    /// One block holding rows already on the context's device.
    pub fn from_device(m: DeviceMatrix) -> Self {
        let mut r = Self::new(m.dim());
        r.push_block(m);
        r
    }

    /// The block holding `slot` and the row within it.
    fn locate(&self, slot: usize) -> (usize, usize) {
        let b = self.starts.partition_point(|&s| s <= slot) - 1;
        (b, slot - self.starts[b])
    }

    /// Keeps only the rows of `kept` (old slots, ascending), as one block.
    pub fn compact(&mut self, ctx: &Context, kept: &[usize]) -> Result<()> {
        let m = self.gather(kept)?;
        *self = Self::new(self.dim);
        if !kept.is_empty() {
            self.push_matrix(ctx, m)?;
        }
        Ok(())
    }
}
