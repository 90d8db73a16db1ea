//! [`ResidentNeighbors`]: k-NN results kept on the context's device.

use crate::core::error::Result;
use crate::core::matrix::MatrixView;
use crate::core::neighbors::{Neighbors, Order};
use crate::runtime::context::{Context, Engine};
use crate::runtime::cuda_rows::upload_slice;
use crate::runtime::tensor::{DeviceIds, DeviceMatrix};

/// The result of [`knn_resident`](crate::knn_resident): `rows x k` ids and
/// distances left on the context's device (device memory on CUDA, host
/// memory on the CPU), row-major, best first, so they can be handed on
/// (for example through DLPack) without a trip through the host. Missing
/// results have id [`MISSING_ID`](crate::MISSING_ID) (`-1` read as `i64`).
#[derive(Debug)]
pub struct ResidentNeighbors {
    rows: usize,
    k: usize,
    order: Order,
    ids: DeviceIds,
    distances: DeviceMatrix,
}

impl ResidentNeighbors {
    pub(crate) fn new(
        rows: usize,
        k: usize,
        order: Order,
        ids: DeviceIds,
        distances: DeviceMatrix,
    ) -> Self {
        Self {
            rows,
            k,
            order,
            ids,
            distances,
        }
    }

    /// Host results kept as they are (a CPU context's "device" is the host).
    pub(crate) fn from_host(n: Neighbors) -> Result<Self> {
        let (rows, k, order) = (n.rows(), n.k(), n.order());
        let (ids, distances) = n.into_parts();
        let (ids, distances) = (
            DeviceIds::from_host(ids),
            DeviceMatrix::from_host_f32(distances, k),
        );
        Ok(Self::new(rows, k, order, ids, distances))
    }

    /// Host results copied to the context's device (kept as they are on
    /// the CPU): for results made on the host that a caller wants beside
    /// its device data.
    pub fn upload(ctx: &Context, n: &Neighbors) -> Result<Self> {
        let (rows, k, order) = (n.rows(), n.k(), n.order());
        let dev = match ctx.engine() {
            Engine::Cpu => return Self::from_host(n.clone()),
            Engine::Cuda(dev) => dev,
        };
        let distances = ctx.upload(MatrixView::new(n.distances(), k)?)?;
        let ids = {
            let _g = dev.lock();
            let s = upload_slice(dev, n.ids())?;
            dev.sync()?;
            DeviceIds::from_cuda(dev, s, rows * k)
        };
        Ok(Self::new(rows, k, order, ids, distances))
    }

    /// Number of rows (queries).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Results per row.
    pub fn k(&self) -> usize {
        self.k
    }
    /// The order results are ranked in.
    pub fn order(&self) -> Order {
        self.order
    }
    /// The ids, `rows * k` of them.
    pub fn ids(&self) -> &DeviceIds {
        &self.ids
    }
    /// The distances, a `rows x k` matrix.
    pub fn distances(&self) -> &DeviceMatrix {
        &self.distances
    }
    /// The ids and the distances, taken apart.
    pub fn into_parts(self) -> (DeviceIds, DeviceMatrix) {
        (self.ids, self.distances)
    }
    /// Copies the results to the host.
    pub fn to_host(&self) -> Result<Neighbors> {
        let dist = self.distances.to_host()?;
        let ids = self.ids.to_host()?;
        Neighbors::from_parts(self.rows, self.k, self.order, ids, dist.into_vec())
    }
}
