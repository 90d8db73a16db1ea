//! Crash tests of the durable index: a child process (this binary, run as
//! `child`) performs seeded random adds, removes and checkpoints and prints
//! `ack N` after each acknowledged operation; the parent kills it with
//! SIGKILL at a random moment, reopens the directory and checks that it
//! holds exactly the acknowledged operations (plus, possibly, the one in
//! flight). `VA_CRASH_ROUNDS` sets the number of kills (default 200).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vector_accelerate::index::{DurableIndex, DurableOptions, Index};
use vector_accelerate::{Context, Matrix, Metric};

const DIM: usize = 8;

/// One operation of a child's script.
#[derive(Debug, Clone)]
enum Step {
    Add(Vec<u64>),
    Remove(Vec<u64>),
    Checkpoint,
}

/// The script of `seed`: batches of new ids, removals of earlier ones,
/// checkpoints now and then.
fn script(seed: u64, len: usize) -> Vec<Step> {
    let mut r = StdRng::seed_from_u64(seed);
    let (mut next, mut live) = (0u64, Vec::new());
    (0..len)
        .map(|_| match r.random_range(0..10) {
            0 => Step::Checkpoint,
            1..=3 if !live.is_empty() => {
                let n = r.random_range(1..=live.len().min(5));
                let gone: Vec<u64> = (0..n)
                    .map(|_| live.swap_remove(r.random_range(0..live.len())))
                    .collect();
                Step::Remove(gone)
            }
            _ => {
                let n = r.random_range(1..40);
                let ids: Vec<u64> = (next..next + n).collect();
                next += n;
                live.extend(&ids);
                Step::Add(ids)
            }
        })
        .collect()
}

/// The vector stored under `id` (recognisable after recovery).
fn row(id: u64) -> [f32; DIM] {
    std::array::from_fn(|j| id as f32 + j as f32 * 0.25)
}

/// The ids held after the first `n` steps.
fn held_after(steps: &[Step], n: usize) -> BTreeSet<u64> {
    let mut held = BTreeSet::new();
    for s in &steps[..n] {
        match s {
            Step::Add(ids) => held.extend(ids),
            Step::Remove(ids) => ids.iter().for_each(|i| {
                held.remove(i);
            }),
            Step::Checkpoint => {}
        }
    }
    held
}

fn options() -> DurableOptions {
    DurableOptions::default()
        .with_segment_bytes(8 << 10)
        .with_checkpoint_bytes(0)
}

/// The child: runs the script on the directory, acknowledging each step.
#[test]
fn child() {
    let (Ok(dir), Ok(seed)) = (
        std::env::var("VA_CRASH_DIR"),
        std::env::var("VA_CRASH_SEED"),
    ) else {
        return; // only a child does anything
    };
    let steps = script(seed.parse().unwrap(), 400);
    let ctx = Context::cpu();
    let d = DurableIndex::create(
        &dir,
        Index::new(&ctx, DIM, "Flat", Metric::L2).unwrap(),
        options(),
    )
    .unwrap();
    for (n, s) in steps.iter().enumerate() {
        match s {
            Step::Add(ids) => {
                let v: Vec<f32> = ids.iter().flat_map(|&i| row(i)).collect();
                d.add_with_ids(&Matrix::new(v, DIM).unwrap(), ids).unwrap();
            }
            Step::Remove(ids) => {
                d.remove_ids(ids).unwrap();
            }
            Step::Checkpoint => d.checkpoint().unwrap(),
        }
        println!("ack {}", n + 1);
    }
    println!("done");
}

fn ids_held(index: &Index, candidates: &BTreeSet<u64>) -> BTreeSet<u64> {
    candidates
        .iter()
        .copied()
        .filter(|&i| index.contains(i))
        .collect()
}

/// Runs one child until killed after `wait`; returns how many steps it
/// acknowledged.
fn run_child(dir: &Path, seed: u64, wait: Duration) -> usize {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("VA_CRASH_DIR", dir)
        .env("VA_CRASH_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = 0;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // The test harness prints "test child ... " before the first
            // line of the child's own, so the mark may follow other text.
            if let Some(at) = line.rfind("ack ") {
                acked = line[at + 4..].trim().parse().unwrap();
            }
        }
        acked
    });
    std::thread::sleep(wait);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    reader.join().unwrap()
}

#[test]
fn killed_writers_lose_no_acknowledged_operation() {
    let rounds: usize = std::env::var("VA_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let base: u64 = std::env::var("VA_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let ctx = Context::cpu();
    let mut r = StdRng::seed_from_u64(base);
    let (mut torn_seen, mut mid_script) = (0, 0);
    for round in 0..rounds {
        let seed = base.wrapping_add(round as u64);
        let dir: PathBuf =
            std::env::temp_dir().join(format!("va-crash-{}-{round}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let wait = Duration::from_micros(r.random_range(2_000..60_000));
        let acked = run_child(&dir, seed, wait);
        let steps = script(seed, 400);
        let what = format!("round {round}, seed {seed} (VA_TEST_SEED={base}), killed after {wait:?}, {acked} acknowledged");
        let has_snapshot = std::fs::read_dir(&dir).is_ok_and(|mut es| {
            es.any(|e| {
                e.is_ok_and(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("snapshot-") && n.ends_with(".vai")
                })
            })
        });
        if !has_snapshot {
            assert_eq!(acked, 0, "{what}: no snapshot but acknowledged steps");
            continue;
        }
        let (d, rec) =
            DurableIndex::open(&ctx, &dir, options()).unwrap_or_else(|e| panic!("{what}: {e}"));
        torn_seen += rec.torn.is_some() as usize;
        mid_script += (acked > 0 && acked < steps.len()) as usize;
        let everything: BTreeSet<u64> = steps
            .iter()
            .flat_map(|s| match s {
                Step::Add(i) => i.clone(),
                _ => vec![],
            })
            .collect();
        let got = ids_held(&d.read(), &everything);
        let exact = held_after(&steps, acked);
        let with_next = held_after(&steps, (acked + 1).min(steps.len()));
        assert!(
            got == exact || got == with_next,
            "{what}: recovered {} ids, acknowledged state {}, {:?}",
            got.len(),
            exact.len(),
            rec
        );
        if let Some(&id) = got.iter().next() {
            assert_eq!(
                d.read().reconstruct(id).unwrap(),
                row(id).to_vec(),
                "{what}"
            );
        }
        drop(d);
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("{rounds} kills, {mid_script} in the middle of the script, {torn_seen} with a torn final record");
    assert!(
        mid_script * 2 >= rounds,
        "most kills must land mid-script: {mid_script} of {rounds}"
    );
}
