//! `vaccel bench index --plot` on the CPU: the picture decodes with its
//! size and has the curves in its plot area, the legend is printed, and a
//! bad peers file or a failing run leaves no picture.

use std::fs;
use std::process::Output;

mod common;

use common::*;

/// The plot area inside the picture's frame: x from, x to, y from, y to.
const AREA: (usize, usize, usize, usize) = (92, 818, 22, 548);
/// The colours of the index curve and of the first peer curve.
const INDEX: [u8; 3] = [31, 119, 180];
const PEER: [u8; 3] = [255, 127, 14];

const PEERS: &str = "name,param,recall,qps\n\
    faiss-ivf,1,0.55,90000\n\
    faiss-ivf,4,0.95,30000\n\
    \"hnsw,M32\",16,0.9,120000\n\
    \"hnsw,M32\",64,0.99,50000\n";

/// `vaccel bench index` on tiny data with `extra` options.
fn bench(extra: &[&str]) -> Output {
    let mut args = vec![
        "bench",
        "index",
        "--device",
        "cpu",
        "--n",
        "2000",
        "--dim",
        "8",
        "--queries",
        "50",
        "--nprobe",
        "1,4",
        "--factory",
        "IVF16,Flat",
        "--repeats",
        "1",
    ];
    args.extend(extra);
    vaccel(&args)
}

/// The RGB pixels of a PNG file and its width and height.
fn decode(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Pixels of colour `c` in the rectangle `(x0, x1, y0, y1)`.
fn count(
    rgb: &[u8],
    width: usize,
    (x0, x1, y0, y1): (usize, usize, usize, usize),
    c: [u8; 3],
) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| 3 * (y * width + x)))
        .filter(|&k| rgb[k..k + 3] == c)
        .count()
}

#[test]
fn plot_draws_the_sweep_the_exact_point_and_the_peers() {
    let dir = TempDir::new("bench-plot");
    fs::write(dir.path("peers.csv"), PEERS).unwrap();
    let (png, peers) = (dir.arg("out.png"), dir.arg("peers.csv"));
    let out = bench(&["--plot", &png, "--peers", &peers]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "| 1 | IVF16,Flat | this run | 2 |",
        "| 2 | exact k-NN | this run | 1 |",
        &format!("| 3 | faiss-ivf | {peers} | 2 |"),
        &format!("| 4 | hnsw,M32 | {peers} | 2 |"),
    ] {
        assert!(text.contains(row), "no '{row}' in:\n{text}");
    }
    assert!(text.contains("plot: recall@10 across from 0."), "{text}");
    assert_eq!(dir.files(), ["out.png", "peers.csv"]);
    let (w, h, rgb) = decode(&dir.path("out.png"));
    assert_eq!((w, h), (900, 600));
    let w = w as usize;
    let inked = (AREA.2..AREA.3)
        .flat_map(|y| (AREA.0..AREA.1).map(move |x| 3 * (y * w + x)))
        .filter(|&k| rgb[k..k + 3] != [255, 255, 255])
        .count();
    assert!(inked > 1000, "{inked} non-white pixels in the plot area");
    assert!(count(&rgb, w, AREA, INDEX) > 20, "no index curve");
    assert!(count(&rgb, w, AREA, PEER) > 20, "no peer curve");
    // The legend's swatches, right of the plot area.
    let legend = (AREA.1 + 4, w, AREA.2, AREA.3);
    assert!(count(&rgb, w, legend, INDEX) > 0 && count(&rgb, w, legend, PEER) > 0);
}

#[test]
fn bad_peers_fail_with_one_line_and_no_picture() {
    let dir = TempDir::new("bench-plot-bad");
    let png = dir.arg("out.png");
    for (name, body, want) in [
        (
            "header.csv",
            "name,recall,qps\na,0.5,10\n",
            "line 1: expected the header",
        ),
        (
            "fields.csv",
            "name,param,recall,qps\na,1,0.5\n",
            "line 2: expected 4 fields",
        ),
        (
            "number.csv",
            "name,param,recall,qps\n\na,1,0.5,10\na,2,high,5\n",
            "line 4: recall 'high'",
        ),
        (
            "qps.csv",
            "name,param,recall,qps\na,1,0.5,-3\n",
            "line 2: qps -3 is not positive",
        ),
        ("empty.csv", "", "is empty"),
    ] {
        fs::write(dir.path(name), body).unwrap();
        let out = bench(&["--plot", &png, "--peers", &dir.arg(name)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: peers file '"), "{err}");
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: printed before failing");
    }
    // An unreadable file among several (a comma list).
    let list = format!("{},{}", dir.arg("header.csv"), dir.arg("missing.csv"));
    let out = bench(&["--plot", &png, "--peers", &dir.arg("missing.csv")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot read peers file") && err.contains("missing.csv"),
        "{err}"
    );
    let out = bench(&["--plot", &png, "--peers", &list]);
    assert_eq!(out.status.code(), Some(1));
    // A run failing after the picture was started leaves nothing behind.
    let out = bench(&["--plot", &png, "--metric", "nonsense"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path("out.png").exists());
    let want = [
        "empty.csv",
        "fields.csv",
        "header.csv",
        "number.csv",
        "qps.csv",
    ];
    assert_eq!(dir.files(), want);
    // --peers needs --plot.
    let out = bench(&["--peers", &dir.arg("header.csv")]);
    assert_eq!(out.status.code(), Some(2));
}
