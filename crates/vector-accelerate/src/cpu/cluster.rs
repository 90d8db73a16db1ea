//! CPU k-means update step: member sums per cluster in f64, each cluster
//! summed in ascending point order (deterministic for any thread count).

use rayon::prelude::*;

use crate::core::matrix::MatrixView;

/// `(sums [k x dim], counts [k])` of the rows of `m` grouped by `clusters`.
pub(crate) fn sums(m: MatrixView<'_>, clusters: &[u32], k: usize) -> (Vec<f64>, Vec<u64>) {
    let d = m.dim();
    let mut counts = vec![0u64; k];
    for &c in clusters {
        counts[c as usize] += 1;
    }
    // Stable counting sort: members of each cluster in ascending order.
    let mut start = vec![0usize; k + 1];
    for j in 0..k {
        start[j + 1] = start[j] + counts[j] as usize;
    }
    let mut next = start.clone();
    let mut members = vec![0u32; clusters.len()];
    for (i, &c) in clusters.iter().enumerate() {
        members[next[c as usize]] = i as u32;
        next[c as usize] += 1;
    }
    let mut out = vec![0f64; k * d];
    out.par_chunks_mut(d).enumerate().for_each(|(j, acc)| {
        for &i in &members[start[j]..start[j + 1]] {
            for (a, x) in acc.iter_mut().zip(m.row(i as usize)) {
                *a += *x as f64;
            }
        }
    });
    (out, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_counts_by_cluster() {
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = MatrixView::new(&v, 2).unwrap();
        let (s, c) = sums(m, &[1, 0, 1], 3);
        assert_eq!(c, vec![1, 2, 0]);
        assert_eq!(s, vec![3.0, 4.0, 6.0, 8.0, 0.0, 0.0]);
    }
}
