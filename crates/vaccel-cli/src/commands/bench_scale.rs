//! `vaccel bench index --devices ...`: the same index spread over 1, 2, 4,
//! ... of the listed devices (a `MultiIndex` of shards or replicas), its
//! queries per second at each count beside one part's, as scaling
//! efficiency (`q/s(n) / (n x q/s(1))`).

use std::io::Write;

use anyhow::{ensure, Result};
use vector_accelerate::index::{Layout, MultiIndex, SearchParams};
use vector_accelerate::{Context, Matrix, Metric, Neighbors};

use super::timing::time_ms;
use crate::reference::recall;

/// What the scaling run needs from `bench index`'s arguments.
pub(crate) struct ScaleRun<'a> {
    pub factory: &'a str,
    pub metric: Metric,
    pub k: usize,
    pub repeats: usize,
    pub add_batch: usize,
    pub params: SearchParams<'a>,
}

/// The contexts of `--devices`: a comma list (`cuda:0,cuda:1`, `cpu`) or
/// `all` (every CUDA device).
pub(crate) fn devices(spec: &str) -> Result<Vec<Context>> {
    if spec.trim() == "all" {
        return Ok(Context::all_cuda()?);
    }
    let contexts = spec
        .split(',')
        .map(|d| Context::from_spec(d.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    ensure!(!contexts.is_empty(), "--devices names no device");
    Ok(contexts)
}

/// Part counts measured: 1, 2, 4, ... and the whole list.
fn counts(n: usize) -> Vec<usize> {
    let mut c: Vec<usize> = std::iter::successors(Some(1), |&p| Some(p * 2))
        .take_while(|&p| p < n)
        .collect();
    c.push(n);
    c
}

/// Builds and times the index over each count of `contexts`, printing a
/// table row per count.
pub(crate) fn scaling(
    out: &mut impl Write,
    (base, queries, truth): (&Matrix, &Matrix, &Neighbors),
    contexts: &[Context],
    layout: Layout,
    run: &ScaleRun<'_>,
) -> Result<()> {
    writeln!(
        out,
        "\n| {layout:?} | devices | build s | recall@{} | ms | queries/s | speedup | efficiency |",
        run.k
    )?;
    writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|")?;
    let mut one_part = None;
    for parts in counts(contexts.len()) {
        let used = &contexts[..parts];
        let t = std::time::Instant::now();
        let index = build(used, base, layout, run)?;
        let build_s = t.elapsed().as_secs_f64();
        let got = index.search(queries, run.k, &run.params)?;
        let ms = time_ms(run.repeats, || {
            index.search(queries, run.k, &run.params)?;
            Ok(())
        })?;
        let qps = queries.rows() as f64 / (ms / 1e3);
        let first = *one_part.get_or_insert(qps);
        let names: Vec<String> = used.iter().map(|c| c.device().to_string()).collect();
        writeln!(
            out,
            "| {parts} | {} | {build_s:.2} | {:.4} | {ms:.3} | {qps:.0} | {:.2}x | {:.0}% |",
            names.join(" "),
            recall(truth, &got),
            qps / first,
            100.0 * qps / (first * parts as f64)
        )?;
    }
    Ok(())
}

/// The index over `contexts`, trained and filled with `base` in batches.
fn build(
    contexts: &[Context],
    base: &Matrix,
    layout: Layout,
    run: &ScaleRun<'_>,
) -> Result<MultiIndex> {
    let mut index = MultiIndex::new(contexts, base.dim(), run.factory, run.metric, layout)?;
    index.train(base)?;
    for first in (0..base.rows()).step_by(run.add_batch) {
        let last = (first + run.add_batch).min(base.rows());
        index.add(base.view().slice_rows(first, last))?;
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_double_up_to_the_list() {
        assert_eq!(super::counts(1), vec![1]);
        assert_eq!(super::counts(4), vec![1, 2, 4]);
        assert_eq!(super::counts(6), vec![1, 2, 4, 6]);
    }
}
