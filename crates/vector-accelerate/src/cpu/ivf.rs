//! The CPU side of IVF list scans: none of its own. The index searches each
//! probed list with the fused k-NN, all of the list's queries at once,
//! lists in parallel (coded lists decoded first).

use crate::core::error::Result;
use crate::core::metric::Prepared;
use crate::core::neighbors::Neighbors;
use crate::runtime::backend::{Cpu, IvfBackend, IvfScanJob, ListLayout};

impl IvfBackend for Cpu {
    /// Measured on 400,000 x 50 rows, 2,048 lists, nprobe 4, 2 cores: with
    /// a cost of 1 the lists were 2.4x slower than the exact search at 5% of
    /// the rows allowed and level at 10%.
    fn filtered_scan_cost(&self) -> f64 {
        8.0
    }

    fn scans_packed_lists(&self, _metric: &Prepared, _layout: &ListLayout) -> bool {
        false
    }

    fn ivf_scan(&self, _job: IvfScanJob<'_>) -> Result<Option<Neighbors>> {
        Ok(None)
    }
}
