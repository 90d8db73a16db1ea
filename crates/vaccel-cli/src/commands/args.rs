//! Arguments every command shares: the device choice and `k`.

use anyhow::{Context as _, Result};
use vector_accelerate::{Context, DEVICE_ENV};

/// A context for `--device` when given, else the automatic choice (which
/// honours the `VECTOR_ACCELERATE_DEVICE` variable); also says how the
/// device was chosen.
pub(crate) fn make_context(device: Option<&str>) -> Result<(Context, String)> {
    match device {
        Some(spec) => {
            let ctx = Context::from_spec(spec).with_context(|| format!("device '{spec}'"))?;
            let how = if spec.trim().eq_ignore_ascii_case("auto") {
                "chosen automatically"
            } else {
                "from --device"
            };
            Ok((ctx, how.to_string()))
        }
        None => {
            let env = std::env::var(DEVICE_ENV).unwrap_or_default();
            let ctx = Context::new().with_context(|| format!("{DEVICE_ENV}={env}"))?;
            let how = match env.trim() {
                "" | "auto" => "chosen automatically".to_string(),
                _ => format!("from {DEVICE_ENV}={env}"),
            };
            Ok((ctx, how))
        }
    }
}

/// Fails unless `k >= 1`.
pub(crate) fn check_k(k: usize) -> Result<()> {
    anyhow::ensure!(k >= 1, "k must be at least 1 (got {k})");
    Ok(())
}
