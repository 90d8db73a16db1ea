//! `vaccel bench durable` on the CPU with tiny sizes: every case reports,
//! the interval policy's rows are labelled with what it risks, and the
//! benchmark's folder is removed afterwards.

mod common;

use common::*;

#[test]
fn every_case_reports_and_the_weaker_policy_says_so() {
    let dir = TempDir::new("bench-durable");
    let root = dir.path("work");
    let out = vaccel(&[
        "bench",
        "durable",
        "--device",
        "cpu",
        "--dir",
        root.to_str().unwrap(),
        "--dim",
        "8",
        "--batch",
        "10",
        "--batches",
        "5",
        "--writers",
        "3",
        "--adds-per-writer",
        "20",
        "--rows",
        "500",
        "--log-records",
        "50",
        "--search-factory",
        "Flat",
        "--seconds",
        "0.05",
        "--sync-interval-ms",
        "5",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for case in ["batch adds", "concurrent writers", "search (", "reopen ("] {
        assert!(text.contains(case), "no '{case}' line in:\n{text}");
    }
    assert_eq!(text.matches("synced every 5 ms").count(), 2, "{text}");
    assert!(!root.exists(), "the benchmark's folder is left behind");
}
