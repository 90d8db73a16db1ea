//! `vaccel bench ml` on the CPU: the `check` column and the files of
//! `--export` (the inputs as `.npy`, the weights as safetensors, the
//! manifest) that the PyTorch peer reads. No timing is asserted.

use std::fs;

mod common;

use common::*;
use vector_accelerate::ml::WeightStore;

const DIM: usize = 768;

/// The rows of the markdown table printed on stdout, split into cells.
fn table(stdout: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = stdout.lines().filter(|l| l.starts_with('|'));
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(lines.next().expect("no table"));
    let rows = lines.skip(1).map(cells).collect();
    (header, rows)
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn export_writes_the_inputs_and_weights_and_rows_end_with_a_check() {
    let dir = TempDir::new("bench-ml");
    // A folder that does not exist yet, two levels down.
    let data = dir.arg("runs/data");
    let (n, nq, nk, nb, k) = (300, 12, 150, 200, 5);
    let out = vaccel(&[
        "bench",
        "ml",
        "--device",
        "cpu",
        "--n",
        &n.to_string(),
        "--queries",
        &nq.to_string(),
        "--keys",
        &nk.to_string(),
        "--base",
        &nb.to_string(),
        "--k",
        &k.to_string(),
        "--precisions",
        "exact,bf16",
        "--repeats",
        "1",
        "--export",
        &data,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The table: a check column last, finite on every timed row.
    let (header, rows) = table(&stdout);
    assert_eq!(header.last().map(String::as_str), Some("check"), "{stdout}");
    let mut checks = Vec::new();
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
        if row[0].starts_with("nq reconstruction") {
            assert_eq!(row.last().unwrap(), "", "{row:?}");
            continue;
        }
        let c: f64 = row
            .last()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("check of {row:?}: {e}"));
        assert!(c.is_finite(), "{row:?}");
        checks.push((row[0].clone(), row[1].clone(), c));
    }
    // Two precisions of: encode, decode, attention 1 and 12 heads, learned.
    assert_eq!(checks.len(), 10, "{stdout}");

    // The files, and nothing else (no temporaries).
    let folder = dir.path("runs/data");
    let mut files: Vec<String> = fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "base.npy",
            "keys.npy",
            "manifest.json",
            "queries.npy",
            "weights.safetensors",
            "x.npy"
        ]
    );
    let mut arrays = Vec::new();
    for (name, rows) in [("x", n), ("queries", nq), ("keys", nk), ("base", nb)] {
        let (r, c, bytes) = read_npy(&folder.join(format!("{name}.npy")), "<f4");
        assert_eq!((r, c, bytes.len()), (rows, DIM, rows * DIM * 4), "{name}");
        let v = f32_values(&bytes);
        assert!(v.iter().all(|x| x.is_finite()), "{name}");
        arrays.push(v);
    }

    // The weights: nn.Linear-style f32 tensors of the expected shapes.
    let mut store = WeightStore::new();
    let names = store
        .load_safetensors(folder.join("weights.safetensors"))
        .unwrap();
    assert_eq!(
        names,
        [
            "attention1.k.weight",
            "attention1.q.weight",
            "attention12.k.weight",
            "attention12.q.weight",
            "learned.weight",
            "nq.decoder.weight",
            "nq.encoder.weight",
        ]
    );
    for (name, shape) in [
        ("attention1.k.weight", [64, DIM]),
        ("attention1.q.weight", [64, DIM]),
        ("attention12.k.weight", [768, DIM]),
        ("attention12.q.weight", [768, DIM]),
        ("learned.weight", [128, DIM]),
        ("nq.decoder.weight", [DIM, 128]),
        ("nq.encoder.weight", [128, DIM]),
    ] {
        let t = store.get(name).unwrap();
        assert_eq!(t.shape(), shape, "{name}");
        assert_eq!(t.dtype().name(), "F32", "{name}");
    }

    // The exact encode check is the mean per-row scale max |x W_e^T| / 127
    // of the exported rows and weights.
    let we = store.get("nq.encoder.weight").unwrap().to_f32();
    let x = &arrays[0];
    let mean_scale = (0..n)
        .map(|r| {
            let row = &x[r * DIM..(r + 1) * DIM];
            (0..128)
                .map(|o| {
                    let w = &we[o * DIM..(o + 1) * DIM];
                    row.iter()
                        .zip(w)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum::<f64>()
                        .abs()
                })
                .fold(0.0, f64::max)
                / 127.0
        })
        .sum::<f64>()
        / n as f64;
    let (_, _, encode) = checks
        .iter()
        .find(|(case, p, _)| case.starts_with("nq encode") && p == "exact")
        .unwrap();
    assert!(
        (encode - mean_scale).abs() <= 1e-5 * mean_scale,
        "printed {encode}, expected {mean_scale}"
    );

    let manifest = fs::read_to_string(folder.join("manifest.json")).unwrap();
    for s in [
        "\"n\": 300",
        "\"queries\": 12",
        "\"keys\": 150",
        "\"base\": 200",
        "\"k\": 5",
        "\"seed\": 7",
        "\"weights.safetensors\"",
        "\"nq.encoder.weight\": {\"dtype\": \"F32\", \"shape\": [128, 768]}",
    ] {
        assert!(manifest.contains(s), "{s} not in {manifest}");
    }
}

#[test]
fn export_refuses_a_file_and_k_beyond_the_base() {
    let dir = TempDir::new("bench-ml-errors");
    fs::write(dir.path("file"), b"not a folder").unwrap();
    let tiny = [
        "bench",
        "ml",
        "--device",
        "cpu",
        "--n",
        "10",
        "--queries",
        "2",
        "--keys",
        "10",
        "--base",
        "10",
        "--repeats",
        "1",
    ];
    for (extra, word) in [
        (
            vec!["--export".to_string(), dir.arg("file")],
            "not a folder",
        ),
        (
            vec!["--export".to_string(), dir.arg("file/sub")],
            "cannot create",
        ),
        (vec!["--k".to_string(), "11".to_string()], "base rows"),
    ] {
        let args: Vec<&str> = tiny
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .collect();
        let out = vaccel(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(word),
            "{args:?}: {err}"
        );
    }
    assert_eq!(fs::read(dir.path("file")).unwrap(), b"not a folder");
    assert_eq!(dir.files(), ["file"]);
}
