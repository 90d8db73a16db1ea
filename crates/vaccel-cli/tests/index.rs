//! `vaccel index build|add|remove|search|info` end to end on the CPU: a
//! Flat index and an IVF index probing every list give the results of
//! `vaccel knn`, ids map through, removed ids never come back, filters
//! hold, and bad input fails with one line, leaving every file as it was.

use std::fs;
use std::path::Path;

mod common;

use common::*;

/// Rows of `dim` values around `clusters` centres, row-major.
fn clustered(rows: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut g = Lcg(seed);
    let centres = g.vec(clusters * dim);
    (0..rows * dim)
        .map(|i| 3.0 * centres[(i / dim % clusters) * dim + i % dim] + 0.3 * g.next())
        .collect()
}

/// Writes a 1-D integer `.npy` of `descr` (`<i8`, `<u8`, `<i4`, ...).
fn write_ids(path: &Path, descr: &str, ids: &[i64]) {
    let size: usize = descr[2..].parse().unwrap();
    let bytes: Vec<u8> = ids
        .iter()
        .flat_map(|v| v.to_le_bytes()[..size].to_vec())
        .collect();
    let shape = format!("({},)", ids.len());
    fs::write(path, npy_bytes(descr, false, &shape, &bytes)).unwrap();
}

/// The words of `cmd` as arguments, `@name` replaced by the path of `name`
/// in `dir`.
fn expand(dir: &TempDir, cmd: &str) -> Vec<String> {
    cmd.split_whitespace()
        .map(|a| match a.strip_prefix('@') {
            Some(f) => dir.arg(f),
            None => a.to_string(),
        })
        .collect()
}

/// Runs `vaccel CMD` (see [`expand`]).
fn run(dir: &TempDir, cmd: &str) -> std::process::Output {
    let args = expand(dir, cmd);
    vaccel(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Runs `vaccel CMD`, expecting success; returns (stdout, stderr).
fn ok(dir: &TempDir, cmd: &str) -> (String, String) {
    let out = run(dir, cmd);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

/// `vaccel knn` on the CPU: (ids, distances).
fn knn(dir: &TempDir, base: &str, queries: &str, k: usize, metric: &str) -> (Vec<i64>, Vec<f32>) {
    ok(
        dir,
        &format!(
            "knn --device cpu --base {base} --queries {queries} -k {k} --metric {metric} \
             --ids @kid.npy --distances @kd.npy -q"
        ),
    );
    (
        read_ids(&dir.path("kid.npy")).2,
        read_dists(&dir.path("kd.npy")),
    )
}

/// `vaccel index search` on the CPU with `extra` options: (ids, distances).
fn search(
    dir: &TempDir,
    index: &str,
    queries: &str,
    k: usize,
    extra: &str,
) -> (Vec<i64>, Vec<f32>) {
    ok(
        dir,
        &format!(
            "index search --device cpu --index {index} --queries {queries} -k {k} \
             --ids @sid.npy --distances @sd.npy -q {extra}"
        ),
    );
    (
        read_ids(&dir.path("sid.npy")).2,
        read_dists(&dir.path("sd.npy")),
    )
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g == w || (g - w).abs() <= 1e-5 * w.abs().max(1.0);
        assert!(same, "{what}: element {i}: {g} vs {w}");
    }
}

#[test]
fn flat_index_search_equals_exact_knn() {
    let dir = TempDir::new("index-flat");
    write_f32(&dir.path("base.npy"), 8, &Lcg(1).vec(300 * 8));
    write_f32(&dir.path("q.npy"), 8, &Lcg(2).vec(25 * 8));
    for metric in ["l2", "cosine", "ip", "l1"] {
        let out = format!("@flat-{metric}");
        let (_, err) = ok(
            &dir,
            &format!(
                "index build --factory Flat --metric {metric} --data @base.npy --out {out} \
                 --device cpu"
            ),
        );
        assert!(
            err.starts_with("build: Flat") && err.contains("300 x 8"),
            "{err}"
        );
        // k beyond the size: the same -1 / infinity padding as knn.
        for k in [7, 310] {
            let (want_ids, want_d) = knn(&dir, "@base.npy", "@q.npy", k, metric);
            let (ids, d) = search(&dir, &out, "@q.npy", k, "");
            assert_eq!(ids, want_ids, "{metric} k={k}");
            assert_close(&d, &want_d, metric);
        }
    }
    assert_eq!(read_ids(&dir.path("sid.npy")).2[300..310], [-1; 10]);
}

#[test]
fn ivf_index_maps_ids_and_probing_every_list_is_exact() {
    let dir = TempDir::new("index-ivf");
    let (n, d) = (2000, 16);
    let x = clustered(n, d, 16, 3);
    write_f32(&dir.path("base.npy"), d, &x);
    write_f32(&dir.path("train.npy"), d, &x[..800 * d]);
    write_f32(&dir.path("q.npy"), d, &clustered(40, d, 16, 4));
    let ids: Vec<i64> = (0..n as i64).map(|i| 5000 + 3 * i).collect();
    write_ids(&dir.path("ids.npy"), "<i4", &ids);
    ok(
        &dir,
        "index build --factory IVF16,Flat --metric l2 --data @base.npy --ids @ids.npy \
         --train @train.npy --nprobe 2 --out @ivf --device cpu -q",
    );
    let (exact, exact_d) = knn(&dir, "@base.npy", "@q.npy", 10, "l2");
    let mapped: Vec<i64> = exact.iter().map(|&i| ids[i as usize]).collect();
    let (got, got_d) = search(&dir, "@ivf", "@q.npy", 10, "--nprobe 16");
    assert_eq!(got, mapped);
    assert_close(&got_d, &exact_d, "nprobe 16");
    // The default nprobe (2): valid ids, sorted distances, most of the exact ones.
    let (got, got_d) = search(&dir, "@ivf", "@q.npy", 10, "");
    assert!(got.iter().all(|id| ids.contains(id)));
    assert!(got_d.chunks(10).all(|r| r.windows(2).all(|w| w[0] <= w[1])));
    let found = got
        .chunks(10)
        .zip(mapped.chunks(10))
        .map(|(g, m)| g.iter().filter(|id| m.contains(id)).count())
        .sum::<usize>();
    assert!(found >= 320, "recall {found} / 400");
}

#[test]
fn added_ids_are_found_and_removed_ids_never_return() {
    let dir = TempDir::new("index-add-remove");
    let d = 8;
    let x = Lcg(5).vec(300 * d);
    write_f32(&dir.path("a.npy"), d, &x[..200 * d]);
    write_f32(&dir.path("b.npy"), d, &x[200 * d..]);
    write_f32(&dir.path("all.npy"), d, &x);
    write_ids(
        &dir.path("b_ids.npy"),
        "<u8",
        &(1000..1100).collect::<Vec<_>>(),
    );
    ok(
        &dir,
        "index build --factory IVF4,Flat --metric l2 --data @a.npy --out @idx --device cpu -q",
    );
    let (_, err) = ok(
        &dir,
        "index add --index @idx --data @b.npy --ids @b_ids.npy --device cpu",
    );
    assert!(
        err.contains("100 vectors added") && err.contains("holds 300"),
        "{err}"
    );
    // Every vector finds itself: ids 0..199, then 1000..1099.
    let own: Vec<i64> = (0..200).chain(1000..1100).collect();
    let (ids, _) = search(&dir, "@idx", "@all.npy", 1, "--nprobe 4");
    assert_eq!(ids, own);

    let mut gone: Vec<i64> = (0..50).step_by(2).chain(1000..1011).collect();
    gone.push(77_777);
    write_ids(&dir.path("gone.npy"), "<i4", &gone);
    let (_, err) = ok(
        &dir,
        "index remove --index @idx --ids @gone.npy --device cpu",
    );
    assert!(
        err.contains("36 of 37 ids removed (1 not in the index); 264 vectors left"),
        "{err}"
    );
    let (ids, _) = search(&dir, "@idx", "@all.npy", 300, "--nprobe 4");
    for row in ids.chunks(300) {
        assert!(row[..264].iter().all(|i| *i >= 0 && !gone.contains(i)));
        assert!(row[264..].iter().all(|&i| i == -1));
    }
    // Sequential ids continue after the largest id seen.
    write_f32(&dir.path("c.npy"), d, &Lcg(6).vec(2 * d));
    ok(&dir, "index add --index @idx --data @c.npy --device cpu -q");
    let (ids, _) = search(&dir, "@idx", "@c.npy", 1, "--nprobe 4");
    assert_eq!(ids, [1100, 1101]);
}

#[test]
fn a_filter_returns_the_nearest_allowed_ids() {
    let dir = TempDir::new("index-filter");
    let d = 6;
    let x = clustered(400, d, 8, 7);
    write_f32(&dir.path("base.npy"), d, &x);
    write_f32(&dir.path("q.npy"), d, &clustered(10, d, 8, 8));
    let allowed: Vec<i64> = (0..400).filter(|i| i % 37 == 3).collect();
    write_ids(&dir.path("allow.npy"), "<i8", &allowed);
    let sub: Vec<f32> = allowed
        .iter()
        .flat_map(|&i| x[i as usize * d..(i as usize + 1) * d].to_vec())
        .collect();
    write_f32(&dir.path("sub.npy"), d, &sub);
    for (factory, out) in [("Flat", "@flat"), ("IVF8,Flat", "@ivf")] {
        ok(
            &dir,
            &format!(
                "index build --factory {factory} --metric cosine --data @base.npy --out {out} \
                 --device cpu -q"
            ),
        );
        for k in [5, 15] {
            let (want, want_d) = knn(&dir, "@sub.npy", "@q.npy", k, "cosine");
            let want: Vec<i64> = want
                .iter()
                .map(|&i| if i < 0 { -1 } else { allowed[i as usize] })
                .collect();
            let (got, got_d) = search(&dir, out, "@q.npy", k, "--filter @allow.npy");
            assert_eq!(got, want, "{factory} k={k}");
            assert_close(&got_d, &want_d, factory);
        }
    }
    // 11 allowed ids, k = 15: four missing per row.
    assert_eq!(allowed.len(), 11);
    let ids = read_ids(&dir.path("sid.npy")).2;
    assert!(ids.chunks(15).all(|r| r[11..] == [-1; 4]));
}

#[test]
fn info_describes_the_index() {
    let dir = TempDir::new("index-info");
    write_f32(&dir.path("base.npy"), 10, &clustered(500, 10, 8, 9));
    ok(
        &dir,
        "index build --factory IVF8,Flat --metric cosine --data @base.npy --out @idx \
         --nprobe 3 --device cpu -q",
    );
    let (out, err) = ok(&dir, "index info --index @idx");
    assert!(err.is_empty(), "{err}");
    let size = fs::metadata(dir.path("idx").join("index.vai"))
        .unwrap()
        .len();
    for line in [
        "factory:   IVF8,Flat".to_string(),
        "metric:    cosine".into(),
        "dimension: 10".into(),
        "vectors:   500".into(),
        "nlist:     8".into(),
        "nprobe:    3".into(),
        "deleted:   0".into(),
        "memory:    ".into(),
        format!("file size: {size} bytes"),
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&line)),
            "'{line}' in:\n{out}"
        );
    }
    assert_eq!(dir.files(), ["base.npy", "idx"]);
}

/// Every file and folder under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.push((format!("{}/", p.display()), Vec::new()));
            out.extend(snapshot(&p));
        } else {
            out.push((p.display().to_string(), fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// Bad inputs: a word the one-line message must contain and the command
/// (run in [`bad_case_folder`]).
const BAD_CASES: &[(&str, &str)] = &[
    (
        "not found",
        "index search --index @nope --queries @q.npy -k 3 --ids @o.npy",
    ),
    ("not found", "index add --index @nope --data @q.npy"),
    ("not an index folder", "index info --index @empty"),
    (
        "damaged",
        "index search --index @bad --queries @q.npy -k 3 --ids @o.npy",
    ),
    (
        "dimension 5",
        "index search --index @idx --queries @q5.npy -k 3 --ids @o.npy",
    ),
    ("dimension 5", "index add --index @idx --data @q5.npy"),
    (
        "dimension 5",
        "index build --factory IVF2,Flat --train @q5.npy",
    ),
    ("appears twice", "index build --factory Flat --ids @dup.npy"),
    (
        "already in the index",
        "index add --index @idx --data @q.npy --ids @ids3.npy",
    ),
    (
        "3 ids for 50 vectors",
        "index build --factory Flat --ids @ids3.npy",
    ),
    (
        "id -3 (element 1) is negative",
        "index build --factory Flat --ids @neg.npy",
    ),
    ("integer", "index build --factory Flat --ids @q.npy"),
    ("factory string 'HNSW32'", "index build --factory HNSW32"),
    (
        "fewer than the 256 centroids",
        "index build --factory IVF4,PQ2",
    ),
    ("must divide", "index build --factory IVF4,PQ3"),
    ("needs at least 64", "index build --factory IVF64,Flat"),
    ("not empty", "index build --factory Flat --out @idx"),
    ("metric", "index build --factory Flat --metric nope"),
    ("float32", "index build --factory Flat --data @bits.npy"),
    ("finite", "index build --factory Flat --data @nan.npy"),
    (
        "not found",
        "index search --index @idx --queries @none.npy -k 3 --ids @o.npy",
    ),
    (
        "integer",
        "index search --index @idx --queries @q.npy -k 3 --ids @o.npy --filter @q.npy",
    ),
    (
        "k must be",
        "index search --index @idx --queries @q.npy -k 0 --ids @o.npy",
    ),
    (
        "nprobe",
        "index search --index @idx --queries @q.npy -k 3 --ids @o.npy --nprobe 0",
    ),
    (
        "same file",
        "index search --index @idx --queries @q.npy -k 3 --ids @o.npy --distances @o.npy",
    ),
    (
        "folder",
        "index search --index @idx --queries @q.npy -k 3 --ids @no/such/o.npy",
    ),
];

/// A folder holding `base.npy` (50 x 4), `q.npy` (3 x 4), `q5.npy` (3 x 5),
/// ids files, bad vector files, an empty folder, an index `idx` of
/// `base.npy` (l2, ids 0..49) and a damaged copy of it `bad`.
fn bad_case_folder() -> TempDir {
    let dir = TempDir::new("index-errors");
    write_f32(&dir.path("base.npy"), 4, &Lcg(10).vec(50 * 4));
    write_f32(&dir.path("q.npy"), 4, &Lcg(11).vec(3 * 4));
    write_f32(&dir.path("q5.npy"), 5, &Lcg(12).vec(3 * 5));
    write_ids(&dir.path("ids3.npy"), "<i8", &[60, 7, 61]);
    let dup: Vec<i64> = (0..50).map(|i| i % 49).collect();
    write_ids(&dir.path("dup.npy"), "<i8", &dup);
    let neg: Vec<i64> = (0..50).map(|i| if i == 1 { -3 } else { i }).collect();
    write_ids(&dir.path("neg.npy"), "<i2", &neg);
    write_u8(&dir.path("bits.npy"), 2, &[1; 20]);
    let mut nan = Lcg(13).vec(50 * 4);
    nan[37] = f32::NAN;
    write_f32(&dir.path("nan.npy"), 4, &nan);
    fs::create_dir(dir.path("empty")).unwrap();
    ok(
        &dir,
        "index build --factory Flat --metric l2 --data @base.npy --out @idx --device cpu -q",
    );
    fs::create_dir(dir.path("bad")).unwrap();
    let mut damaged = fs::read(dir.path("idx").join("index.vai")).unwrap();
    let at = damaged.len() - 100;
    damaged[at] ^= 1;
    fs::write(dir.path("bad").join("index.vai"), damaged).unwrap();
    dir
}

#[test]
fn bad_input_fails_with_one_line_and_changes_no_file() {
    let dir = bad_case_folder();
    let before = snapshot(&dir.path(""));
    for (word, cmd) in BAD_CASES {
        // Builds read base.npy into a new folder unless the case says.
        let mut cmd = cmd.to_string();
        if cmd.starts_with("index build") {
            for (opt, default) in [
                ("--data", "@base.npy"),
                ("--metric", "l2"),
                ("--out", "@new"),
            ] {
                if !cmd.contains(opt) {
                    cmd = format!("{cmd} {opt} {default}");
                }
            }
        }
        if !cmd.starts_with("index info") {
            cmd.push_str(" --device cpu");
        }
        let out = run(&dir, &cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(err.starts_with("error: "), "{cmd}: {err}");
        assert!(err.contains(word), "{cmd}: expected '{word}' in: {err}");
        assert!(out.stdout.is_empty(), "{cmd}");
        assert!(snapshot(&dir.path("")) == before, "{cmd}: files changed");
    }
}

#[test]
fn summaries_unless_quiet() {
    let dir = bad_case_folder();
    let (_, err) = ok(
        &dir,
        "index search --device cpu --index @idx --queries @q.npy -k 2 --ids @o.npy",
    );
    assert!(
        err.starts_with("search: 3 queries x 50 vectors (Flat, l2)"),
        "{err}"
    );
    let (_, err) = ok(
        &dir,
        "index remove --device cpu --index @idx --ids @ids3.npy -q",
    );
    assert!(err.is_empty(), "{err}");
    let (out, _) = ok(&dir, "index info --index @idx");
    assert!(out.contains("vectors:   49"), "{out}");
}

/// `vaccel index check` reports what opening a durable directory would do
/// (clean, or a torn final record to cut), changes nothing, and fails with
/// one line on damage.
#[test]
fn check_reports_what_recovery_would_do() {
    use vector_accelerate::index::{DurableIndex, DurableOptions, Index};
    use vector_accelerate::{Context, Matrix, Metric};
    let dir = TempDir::new("index-check");
    let durable = dir.path("durable");
    let ctx = Context::cpu();
    let rows = Matrix::new(clustered(40, 4, 3, 5), 4).unwrap();
    let d = DurableIndex::create(
        &durable,
        Index::new(&ctx, 4, "Flat", Metric::L2).unwrap(),
        DurableOptions::default(),
    )
    .unwrap();
    d.add(&rows).unwrap();
    d.remove_ids(&[1, 2]).unwrap();
    drop(d);
    let check = format!("index check {}", durable.display());
    let (out, _) = ok(&dir, &check);
    assert!(
        out.contains("replay:    2 log records") && out.contains("clean"),
        "{out}"
    );
    let seg = fs::read_dir(&durable)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[9, 0, 0, 0, 7, 7]);
    fs::write(&seg, &bytes).unwrap();
    let (out, _) = ok(&dir, &check);
    assert!(
        out.contains(&format!(
            "torn final record at {}, byte {whole}",
            seg.display()
        )),
        "{out}"
    );
    assert_eq!(fs::read(&seg).unwrap(), bytes, "check changed the log");
    // A damaged record before the end: one line naming file and offset.
    bytes[whole - 3] ^= 0xff;
    bytes.truncate(whole);
    bytes.extend_from_within(20..40);
    fs::write(&seg, &bytes).unwrap();
    let out = run(&dir, &check);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(
        err.contains(&seg.display().to_string()) && err.contains("byte"),
        "{err}"
    );
    let out = run(&dir, &format!("index check {}", dir.path("").display()));
    assert!(!out.status.success());
}
