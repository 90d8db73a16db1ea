//! Stopping long operations from outside: a process-wide flag that long
//! loops (k-NN tiles and query blocks, IVF list scans, k-means iterations)
//! read between steps, returning [`Error::Interrupted`] when it is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::core::error::{Error, Result};

fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(Default::default)
}

/// The process-wide interrupt flag. Setting it (from a signal handler, say)
/// stops running operations at their next step with
/// [`Error::Interrupted`]; operations started while it is set stop at once.
/// The caller clears it before the next operation.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    flag().clone()
}

/// Whether an interrupt was requested.
pub(crate) fn interrupted() -> bool {
    flag().load(Ordering::Relaxed)
}

/// [`Error::Interrupted`] when an interrupt was requested.
pub(crate) fn check() -> Result<()> {
    if interrupted() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}
