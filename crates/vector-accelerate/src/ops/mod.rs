//! Public operations, one module per family. Each validates its inputs,
//! then dispatches once to the CPU or CUDA backend.

pub mod cluster;
pub mod diagnostics;
pub mod distance;
pub mod histogram;
pub mod knn;
pub mod linalg;
pub mod ml;
pub mod quantize;
pub mod select;
pub mod stats;
pub mod vector;

use crate::core::error::{Error, Result};
use crate::core::metric::{Distance, Metric, Prepared};
use crate::runtime::context::Context;
use crate::runtime::input::Input;

/// Validates a (queries, base, distance) triple shared by distance and k-NN
/// calls, returning the prepared metric.
pub(crate) fn prepare(
    ctx: &Context,
    q: &Input<'_>,
    x: &Input<'_>,
    dist: &Distance,
) -> Result<Prepared> {
    if q.rows() == 0 {
        return Err(Error::EmptyInput { what: "queries" });
    }
    if x.rows() == 0 {
        return Err(Error::EmptyInput { what: "base" });
    }
    for i in [q, x] {
        if let Input::Resident(d) = i {
            d.check_device(ctx)?;
        }
    }
    if q.is_binary() != x.is_binary() {
        return Err(Error::invalid(
            "input kinds",
            format!(
                "queries {}, base {}",
                if q.is_binary() { "binary" } else { "f32" },
                if x.is_binary() { "binary" } else { "f32" }
            ),
            "queries and base must both be f32 or both be bit-packed binary",
        ));
    }
    if q.dim() != x.dim() {
        return Err(Error::DimensionMismatch {
            what: "query dimension vs base dimension",
            expected: x.dim(),
            got: q.dim(),
        });
    }
    // 16-bit rows on a device are only ever a k-NN base (checked there).
    refuse_half(q, "queries")?;
    let metric = dist.validate(x.dim(), x.is_binary())?;
    if metric == Metric::Jaccard && !x.is_binary() {
        for (what, i) in [("queries", q), ("base", x)] {
            match i {
                Input::F32(m) => {
                    if let Some(pos) = m.as_slice().iter().position(|v| *v < 0.0) {
                        return Err(Error::invalid(
                            "weighted jaccard input",
                            m.as_slice()[pos],
                            format!(
                                "{what} row {} column {} is negative; weighted jaccard needs values >= 0",
                                pos / m.dim(),
                                pos % m.dim()
                            ),
                        ));
                    }
                }
                Input::Resident(d) if d.has_negative() => {
                    return Err(Error::invalid(
                        "weighted jaccard input",
                        format!("resident {what}"),
                        "holds negative values; weighted jaccard needs values >= 0",
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(Prepared {
        metric,
        weights: dist.weights.clone(),
        threshold: dist.binarize_threshold,
        normalized: dist.inputs_normalized,
    })
}

/// Whether an input is rows kept in 16 bits on a CUDA device.
pub(crate) fn is_half(i: &Input<'_>) -> bool {
    matches!(i, Input::Resident(d) if d.half_store().is_some())
}

/// Errors when `i` is 16-bit device rows: such a matrix is only a k-NN base.
pub(crate) fn refuse_half(i: &Input<'_>, what: &'static str) -> Result<()> {
    if is_half(i) {
        return Err(Error::invalid(
            "input",
            format!("{what} kept in 16 bits on the device"),
            "16-bit device rows (upload_f16 / upload_bf16) are a k-NN base for l2, euclidean, \
             cosine, cosine-similarity, ip and abs-ip only; upload f32 rows for this operation",
        ));
    }
    Ok(())
}

/// Errors unless `x` holds rows of `f32` values (host, or resident on the
/// context's device): empty input, bit-packed rows (`family` says what the
/// operation takes instead) or rows on another device.
pub(crate) fn check_f32_rows(
    ctx: &Context,
    x: &Input<'_>,
    what: &'static str,
    family: &'static str,
) -> Result<()> {
    if x.rows() == 0 {
        return Err(Error::EmptyInput { what });
    }
    if x.is_binary() {
        return Err(Error::invalid(
            "input",
            format!("{what}: bit-packed binary rows"),
            format!("{family} take f32 rows"),
        ));
    }
    if let Input::Resident(d) = x {
        d.check_device(ctx)?;
    }
    Ok(())
}
