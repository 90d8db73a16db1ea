//! The CPU side of IVF list scans: none of its own. The index searches each
//! probed list with the fused k-NN, all of the list's queries at once,
//! lists in parallel.

use crate::core::error::Result;
use crate::core::metric::Prepared;
use crate::core::neighbors::Neighbors;
use crate::runtime::backend::{Cpu, IvfBackend, IvfScanJob};

impl IvfBackend for Cpu {
    fn scans_packed_lists(&self, _metric: &Prepared, _dim: usize) -> bool {
        false
    }

    fn ivf_scan(&self, _job: IvfScanJob<'_>) -> Result<Option<Neighbors>> {
        Ok(None)
    }
}
