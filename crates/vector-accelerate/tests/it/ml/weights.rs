//! The weight store: safetensors files, shape-checked access, typed errors,
//! the device cache and memory accounting.

use super::{safetensors_by_hand, TempFile};
use crate::common::*;
use rand::Rng;
use vector_accelerate::half::{bf16, f16};
use vector_accelerate::linalg::Activation;
use vector_accelerate::ml::{DType, Linear, Tensor, WeightBytes, WeightStore};
use vector_accelerate::{Context, Error, Matrix, Precision};

/// One tensor of each dtype with random values (every bit pattern for the
/// 16-bit and 8-bit types, NaN and infinities included: files carry bytes).
fn every_dtype(s: u64) -> Vec<Tensor> {
    let mut r = rng(s);
    let f: Vec<f32> = (0..15).map(|_| f32::from_bits(r.random())).collect();
    let h: Vec<f16> = (0..7).map(|_| f16::from_bits(r.random())).collect();
    let b: Vec<bf16> = (0..8).map(|_| bf16::from_bits(r.random())).collect();
    let i: Vec<i8> = (-128..=127).collect();
    let u: Vec<u8> = (0..=255).collect();
    vec![
        Tensor::from_values("f32", &[3, 5], &f).unwrap(),
        Tensor::from_values("f16", &[7], &h).unwrap(),
        Tensor::from_values("bf16", &[2, 2, 2], &b).unwrap(),
        Tensor::from_values("i8", &[16, 16], &i).unwrap(),
        Tensor::from_values("u8", &[256], &u).unwrap(),
        Tensor::from_values("scalar", &[], &[1.5f32]).unwrap(),
        Tensor::from_values("empty", &[0, 3], &[] as &[u8]).unwrap(),
    ]
}

fn store_of(tensors: &[Tensor]) -> WeightStore {
    let mut st = WeightStore::new();
    for t in tensors {
        st.insert(t.name(), t.clone());
    }
    st
}

/// Bit patterns of a tensor's values in its own type.
fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t
            .values::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::F16 => t
            .values::<f16>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::Bf16 => t
            .values::<bf16>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::I8 => t
            .values::<i8>()
            .unwrap()
            .iter()
            .map(|&v| v as u8 as u64)
            .collect(),
        DType::U8 => t
            .values::<u8>()
            .unwrap()
            .iter()
            .map(|&v| v as u64)
            .collect(),
    }
}

fn check_same(label: &str, got: &WeightStore, want: &[Tensor]) {
    let mut names: Vec<&str> = want.iter().map(|t| t.name()).collect();
    names.sort();
    assert_eq!(got.names(), names, "{label}: names");
    for t in want {
        let g = got.get(t.name()).unwrap();
        assert_eq!(g.dtype(), t.dtype(), "{label}: dtype of {}", t.name());
        assert_eq!(g.shape(), t.shape(), "{label}: shape of {}", t.name());
        assert_eq!(bits(g), bits(t), "{label}: values of {}", t.name());
        assert_eq!(g, t, "{label}: tensor {}", t.name());
    }
}

#[test]
fn safetensors_round_trip_of_every_dtype_is_exact() {
    let s = seed();
    let tensors = every_dtype(s);
    let st = store_of(&tensors);
    // In memory.
    let bytes = st.to_safetensors_bytes(None).unwrap();
    let mut back = WeightStore::new();
    let names = back.load_safetensors_bytes(&bytes).unwrap();
    assert_eq!(names, st.names(), "seed {s}");
    check_same(&format!("bytes, seed {s}"), &back, &tensors);
    // Through a file.
    let f = TempFile::new("round-trip");
    st.save_safetensors(&f.0).unwrap();
    let mut from_file = WeightStore::new();
    from_file.load_safetensors(&f.0).unwrap();
    check_same(&format!("file, seed {s}"), &from_file, &tensors);
    // A chosen list only.
    let g = TempFile::new("round-trip-selected");
    st.save_safetensors_selected(&g.0, &["i8", "bf16", "i8"])
        .unwrap();
    let mut sel = WeightStore::new();
    sel.load_safetensors(&g.0).unwrap();
    check_same("selected", &sel, &[tensors[2].clone(), tensors[3].clone()]);
    // Widening is exact.
    let h = back.get("f16").unwrap();
    let want: Vec<f32> = h
        .values::<f16>()
        .unwrap()
        .iter()
        .map(|v| v.to_f32())
        .collect();
    let got = h.to_f32();
    assert!(got
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
    let b = back.get("bf16").unwrap();
    let want: Vec<f32> = b
        .values::<bf16>()
        .unwrap()
        .iter()
        .map(|v| f32::from_bits((v.to_bits() as u32) << 16))
        .collect();
    assert!(b
        .to_f32()
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(
        back.get("i8").unwrap().to_f32(),
        (-128..=127).map(|v| v as f32).collect::<Vec<_>>()
    );
    assert_eq!(
        back.get("u8").unwrap().to_f32(),
        (0..=255).map(|v| v as f32).collect::<Vec<_>>()
    );
}

#[test]
fn a_file_written_by_hand_loads() {
    let header = r#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"h":{"dtype":"F16","shape":[1],"data_offsets":[22,24]},"codes":{"dtype":"U8","shape":[2],"data_offsets":[24,26]},"s":{"dtype":"I8","shape":[],"data_offsets":[26,27]}}"#;
    let mut data = Vec::new();
    for v in [1.5f32, -2.0, 0.25, 3.0e38] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    for b in [0x3F80u16, 0xC020, 0x0001] {
        data.extend_from_slice(&b.to_le_bytes()); // 1, -2.5, 2^-133
    }
    data.extend_from_slice(&0xBC00u16.to_le_bytes()); // f16 -1
    data.extend_from_slice(&[0, 255, 0x80]); // u8 0, 255; i8 -128
    let file = safetensors_by_hand(header, &data);
    let mut st = WeightStore::new();
    let names = st.load_safetensors_bytes(&file).unwrap();
    assert_eq!(names, ["b", "codes", "h", "s", "w"]);
    let w = st.get("w").unwrap();
    assert_eq!((w.dtype(), w.shape()), (DType::F32, &[2, 2][..]));
    assert_eq!(
        st.matrix("w", 2, 2).unwrap().as_slice(),
        &[1.5, -2.0, 0.25, 3.0e38]
    );
    assert_eq!(st.get("b").unwrap().dtype(), DType::Bf16);
    assert_eq!(st.vector("b", 3).unwrap(), vec![1.0, -2.5, 2f32.powi(-133)]);
    assert_eq!(st.vector("h", 1).unwrap(), vec![-1.0]);
    assert_eq!(
        st.get("codes").unwrap().values::<u8>().unwrap(),
        vec![0, 255]
    );
    let s = st.get("s").unwrap();
    assert_eq!(
        (s.shape(), s.values::<i8>().unwrap()),
        (&[][..], vec![-128])
    );

    // And what the store writes has the layout the format describes.
    let mut out = WeightStore::new();
    out.insert_f32("w", &[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .unwrap();
    let bytes = out.to_safetensors_bytes(None).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(
        header.contains(r#""w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#),
        "{header}"
    );
    let data = &bytes[8 + n..];
    assert_eq!(data.len(), 24);
    let vals: Vec<f32> = data
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(vals, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

/// The reason of a [`Error::BadWeightFile`], checking the path it names.
fn bad_file(r: Result<Vec<String>, Error>, path: &str) -> String {
    match r {
        Err(Error::BadWeightFile { path: p, reason }) => {
            assert_eq!(p, path);
            let e = Error::BadWeightFile {
                path: p,
                reason: reason.clone(),
            };
            assert!(e.to_string().contains(path) && e.to_string().contains(&reason));
            reason
        }
        other => panic!("expected BadWeightFile, got {other:?}"),
    }
}

#[test]
fn bad_files_are_typed_errors() {
    let mut st = WeightStore::new();
    st.insert_f32("keep", &[2], vec![1.0, 2.0]).unwrap();
    let good = st.to_safetensors_bytes(None).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut fresh = WeightStore::new();

    // Truncated in the data, in the header, before the header length.
    let r = bad_file(
        fresh.load_safetensors_bytes(&good[..good.len() - 1]),
        "<bytes>",
    );
    assert!(r.contains("truncated") && r.contains("7 data bytes"), "{r}");
    let r = bad_file(fresh.load_safetensors_bytes(&good[..8 + n / 2]), "<bytes>");
    assert!(
        r.contains("truncated") && r.contains(&format!("claims {n} bytes")),
        "{r}"
    );
    let r = bad_file(fresh.load_safetensors_bytes(&good[..5]), "<bytes>");
    assert!(r.contains("truncated") && r.contains("5 bytes"), "{r}");
    // Trailing bytes.
    let mut long = good.clone();
    long.push(0);
    let r = bad_file(fresh.load_safetensors_bytes(&long), "<bytes>");
    assert!(r.contains("9 data bytes"), "{r}");

    // A corrupted header (not JSON), a huge header length.
    let mut c = good.clone();
    c[8] = b'#';
    let r = bad_file(fresh.load_safetensors_bytes(&c), "<bytes>");
    assert!(r.contains("invalid header"), "{r}");
    let mut c = good.clone();
    c[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let r = bad_file(fresh.load_safetensors_bytes(&c), "<bytes>");
    assert!(r.contains(&(1u64 << 40).to_string()), "{r}");
    // Offsets that do not match the shape.
    let f = safetensors_by_hand(
        r#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    let r = bad_file(fresh.load_safetensors_bytes(&f), "<bytes>");
    assert!(r.contains("'x'"), "{r}");

    // Unsupported dtypes, named with their tensor; nothing is loaded.
    for (dt, size) in [("F64", 8), ("I64", 8), ("BOOL", 1), ("I32", 4)] {
        let h = format!(
            r#"{{"ok":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}},"wide":{{"dtype":"{dt}","shape":[2],"data_offsets":[4,{}]}}}}"#,
            4 + 2 * size
        );
        let f = safetensors_by_hand(&h, &vec![0; 4 + 2 * size]);
        let r = bad_file(fresh.load_safetensors_bytes(&f), "<bytes>");
        assert!(
            r.contains(dt) && r.contains("'wide'") && r.contains("not supported"),
            "{r}"
        );
        assert!(fresh.is_empty(), "a failed load added tensors");
    }

    // Through files: the message names the path.
    let t = TempFile::new("truncated");
    std::fs::write(&t.0, &good[..good.len() - 3]).unwrap();
    let path = t.0.display().to_string();
    let r = bad_file(fresh.load_safetensors(&t.0), &path);
    assert!(r.contains("truncated"), "{r}");
    let missing =
        std::env::temp_dir().join(format!("va-it-{}-none.safetensors", std::process::id()));
    let r = bad_file(
        fresh.load_safetensors(&missing),
        &missing.display().to_string(),
    );
    assert!(r.contains("cannot read"), "{r}");

    // Random damage to the header or the length: an error or a valid
    // store, never a panic.
    let s = seed();
    let mut r = rng(s);
    for _ in 0..500 {
        let mut c = good.clone();
        let at = r.random_range(0..8 + n);
        c[at] = r.random();
        if let Err(e) = fresh.load_safetensors_bytes(&c) {
            assert!(matches!(e, Error::BadWeightFile { .. }), "seed {s}: {e:?}");
        }
    }
}

#[test]
fn lookups_are_shape_and_dtype_checked() {
    let mut st = WeightStore::new();
    st.insert_f32("enc.weight", &[768, 128], vec![0.5; 768 * 128])
        .unwrap();
    st.insert(
        "codes",
        Tensor::from_values("ignored", &[4], &[1u8, 2, 3, 4]).unwrap(),
    );
    assert_eq!(st.get("codes").unwrap().name(), "codes");

    // Missing: names the tensor and lists what there is.
    match st.get("dec.weight") {
        Err(e @ Error::MissingTensor { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("'dec.weight'") && m.contains("codes, enc.weight"),
                "{m}"
            );
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let mut many = WeightStore::new();
    for i in 0..30 {
        many.insert_f32(&format!("t{i:02}"), &[1], vec![0.0])
            .unwrap();
    }
    let m = many.get("x").unwrap_err().to_string();
    assert!(
        m.contains("t00") && m.contains("t19") && !m.contains("t20") && m.contains("and 10 more"),
        "{m}"
    );

    // Wrong shape, with both shapes.
    for e in [
        st.matrix("enc.weight", 128, 768).unwrap_err(),
        st.linear(&Context::cpu(), "enc.weight", None, (768, 128))
            .unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::WrongShape { name, .. } if name == "enc.weight"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("expected [128, 768], found [768, 128]"),
            "{e}"
        );
    }
    let e = st.vector("codes", 5).unwrap_err();
    assert!(
        matches!(&e, Error::WrongShape { expected, found, .. } if expected == &[5] && found == &[4])
    );
    assert!(e.to_string().contains("'codes'"), "{e}");
    let e = st
        .linear(&Context::cpu(), "enc.weight", Some("codes"), (128, 768))
        .unwrap_err();
    assert!(e.to_string().contains("expected [768], found [4]"), "{e}");

    // Wrong dtype for a typed read.
    match st.get("codes").unwrap().values::<i8>() {
        Err(
            e @ Error::WrongDtype {
                expected: DType::I8,
                found: DType::U8,
                ..
            },
        ) => {
            let m = e.to_string();
            assert!(
                m.contains("'codes'") && m.contains("U8") && m.contains("I8"),
                "{m}"
            );
        }
        other => panic!("expected WrongDtype, got {other:?}"),
    }

    // Values that do not fill the shape.
    match st.insert_f32("short", &[2, 3], vec![0.0; 5]) {
        Err(
            e @ Error::TensorSize {
                expected_bytes: 24,
                got_bytes: 20,
                ..
            },
        ) => {
            assert!(
                e.to_string().contains("'short'") && e.to_string().contains("[2, 3]"),
                "{e}"
            );
        }
        other => panic!("expected TensorSize, got {other:?}"),
    }
    assert!(!st.contains("short"));
    assert!(matches!(
        Tensor::new("raw", DType::F16, &[3], vec![0; 5]),
        Err(Error::TensorSize {
            expected_bytes: 6,
            got_bytes: 5,
            ..
        })
    ));
    // Selecting a missing tensor for saving.
    assert!(matches!(
        st.to_safetensors_bytes(Some(&["codes", "nope"])),
        Err(Error::MissingTensor { name, .. }) if name == "nope"
    ));
    // Non-finite weights are refused when a map is made.
    st.insert_f32("nan", &[1, 2], vec![1.0, f32::NAN]).unwrap();
    let e = st.linear(&Context::cpu(), "nan", None, (2, 1)).unwrap_err();
    assert!(
        e.to_string().contains("(0, 1)") && e.to_string().contains("'nan'"),
        "{e}"
    );
}

#[test]
fn weights_of_every_dtype_make_the_same_maps() {
    for_each_backend("weights_of_every_dtype_make_the_same_maps", |ctx| {
        let s = seed();
        let mut r = rng(s);
        let (d_in, d_out) = (19, 6);
        let x = gaussian(&mut r, 33, d_in);
        let mut st = WeightStore::new();
        let n = d_in * d_out;
        let vals: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 8.0)
            .collect();
        st.insert_f32("f32", &[d_out, d_in], vals.clone()).unwrap();
        let h: Vec<f16> = vals.iter().map(|&v| f16::from_f32(v)).collect();
        st.insert("f16", Tensor::from_values("", &[d_out, d_in], &h).unwrap());
        let b: Vec<bf16> = vals.iter().map(|&v| bf16::from_f32(v)).collect();
        st.insert("bf16", Tensor::from_values("", &[d_out, d_in], &b).unwrap());
        let i: Vec<i8> = vals.iter().map(|&v| (v * 8.0) as i8).collect();
        st.insert("i8", Tensor::from_values("", &[d_out, d_in], &i).unwrap());
        let u: Vec<u8> = vals.iter().map(|&v| (v * 8.0 + 100.0) as u8).collect();
        st.insert("u8", Tensor::from_values("", &[d_out, d_in], &u).unwrap());
        st.insert_f32(
            "bias",
            &[d_out],
            (0..d_out).map(|o| o as f32 - 2.5).collect(),
        )
        .unwrap();
        let widened: [(&str, Vec<f32>); 5] = [
            ("f32", vals.clone()),
            ("f16", h.iter().map(|v| v.to_f32()).collect()),
            ("bf16", b.iter().map(|v| v.to_f32()).collect()),
            ("i8", i.iter().map(|&v| v as f32).collect()),
            ("u8", u.iter().map(|&v| v as f32).collect()),
        ];
        for (name, want) in widened {
            let m = st.matrix(name, d_out, d_in).unwrap();
            assert_eq!(m.as_slice(), &want[..], "{name}: widened values");
            let lin = st.linear(ctx, name, Some("bias"), (d_in, d_out)).unwrap();
            assert_eq!((lin.d_in(), lin.d_out()), (d_in, d_out));
            let reference = Linear::new(ctx, &m, Some(&st.vector("bias", d_out).unwrap())).unwrap();
            let got = lin
                .apply(ctx, &x, Activation::Relu, Precision::Exact)
                .unwrap()
                .into_host()
                .unwrap();
            let want = reference
                .apply(ctx, &x, Activation::Relu, Precision::Exact)
                .unwrap()
                .into_host()
                .unwrap();
            for (j, (a, b)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
                let scale: f32 = x.row(j / d_out).iter().map(|v| v.abs()).sum::<f32>() * 16.0;
                assert!(
                    (a - b).abs() <= 1e-5 * scale,
                    "{name} seed {s}: element {j}: {a} vs {b}"
                );
            }
        }
    });
}

/// Bytes of a cached copy of a `rows x cols` tensor of `dtype` on `ctx`.
fn copy_bytes(ctx: &Context, dtype: DType, rows: usize, cols: usize) -> usize {
    match dtype {
        DType::F16 | DType::Bf16 if ctx.is_cuda() => rows * cols.div_ceil(8) * 8 * 2,
        _ => rows * cols * 4,
    }
}

#[test]
fn memory_is_accounted_and_device_copies_are_cached() {
    for_each_backend("memory_is_accounted_and_device_copies_are_cached", |ctx| {
        let mut st = WeightStore::new();
        assert_eq!(st.bytes(), WeightBytes::default());
        st.insert_f32("w", &[4, 10], vec![0.25; 40]).unwrap();
        st.insert_f32("b", &[4], vec![1.0; 4]).unwrap();
        let h: Vec<f16> = vec![f16::from_f32(0.5); 3 * 5];
        st.insert("h", Tensor::from_values("", &[3, 5], &h).unwrap());
        let host = 40 * 4 + 4 * 4 + 15 * 2;
        assert_eq!(st.bytes(), WeightBytes { host, device: 0 });

        let a = st.linear(ctx, "w", Some("b"), (10, 4)).unwrap();
        let dw = copy_bytes(ctx, DType::F32, 4, 10);
        assert_eq!(st.bytes(), WeightBytes { host, device: dw });
        // The same weight again (with or without the bias, from another
        // context of the same device): no new copy.
        let b = st.linear(ctx, "w", None, (10, 4)).unwrap();
        let c = st.linear(&ctx.clone(), "w", Some("b"), (10, 4)).unwrap();
        assert_eq!(st.bytes().device, dw);
        assert!(std::ptr::eq(a.weight(), b.weight()) && std::ptr::eq(a.weight(), c.weight()));
        assert!(std::ptr::eq(
            st.resident(ctx, "w", 4, 10).unwrap().as_ref(),
            a.weight()
        ));
        let dh = copy_bytes(ctx, DType::F16, 3, 5);
        let hl = st.linear(ctx, "h", None, (5, 3)).unwrap();
        assert_eq!(st.bytes().device, dw + dh);
        // Debug output describes the tensors without their values.
        let dbg = format!("{st:?}");
        assert!(
            dbg.contains("\"w\"") && dbg.contains("device_copies: 2") && !dbg.contains("0.25"),
            "{dbg}"
        );

        // Unloading the device copy keeps the tensor; maps keep working.
        assert_eq!(st.unload_device("w"), dw);
        assert_eq!(st.bytes(), WeightBytes { host, device: dh });
        assert_eq!(st.unload_device("w"), 0);
        let x = Matrix::new(vec![1.0; 10], 10).unwrap();
        let y = a
            .apply(ctx, &x, Activation::None, Precision::Exact)
            .unwrap()
            .into_host()
            .unwrap();
        assert_eq!(y.as_slice(), &[3.5; 4]);
        let again = st.linear(ctx, "w", None, (10, 4)).unwrap();
        assert!(
            !std::ptr::eq(again.weight(), a.weight()),
            "a fresh copy after unloading"
        );
        assert_eq!(st.bytes().device, dw + dh);

        // Replacing a tensor drops its stale copy.
        st.insert_f32("w", &[4, 10], vec![1.0; 40]).unwrap();
        assert_eq!(st.bytes(), WeightBytes { host, device: dh });
        let y = st
            .linear(ctx, "w", None, (10, 4))
            .unwrap()
            .apply(ctx, &x, Activation::None, Precision::Exact)
            .unwrap()
            .into_host()
            .unwrap();
        assert_eq!(y.as_slice(), &[10.0; 4]);

        // Removing drops both.
        let t = st.remove("h").unwrap();
        assert_eq!(t.byte_len(), 30);
        assert_eq!(
            st.bytes(),
            WeightBytes {
                host: host - 30,
                device: dw
            }
        );
        assert!(matches!(st.remove("h"), Err(Error::MissingTensor { .. })));
        drop(hl);
        st.remove("w").unwrap();
        st.remove("b").unwrap();
        assert_eq!(st.bytes(), WeightBytes::default());
        assert!(st.is_empty());
    });
}
