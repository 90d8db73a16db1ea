//! Every CUDA kernel module compiles with NVRTC for sm_80 and sm_90; needs
//! only NVRTC (no GPU). `VECTOR_ACCELERATE_REQUIRE_NVRTC=1` (CI) makes a
//! missing NVRTC a failure.

use vector_accelerate::kernels::{compile_all, nvrtc_available, nvrtc_version, MODULES};

#[test]
fn every_kernel_module_compiles_for_sm80_and_sm90() {
    if !nvrtc_available() {
        assert!(
            std::env::var("VECTOR_ACCELERATE_REQUIRE_NVRTC").map_or(true, |v| v != "1"),
            "VECTOR_ACCELERATE_REQUIRE_NVRTC=1 but NVRTC (libnvrtc.so.13) cannot be loaded"
        );
        eprintln!("skip: NVRTC not installed; kernel modules not compiled");
        return;
    }
    eprintln!("NVRTC {}", nvrtc_version().unwrap());
    for arch in ["sm_80", "sm_90"] {
        let built = compile_all(arch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(built.len(), MODULES.len());
        for (name, bytes) in built {
            assert!(bytes > 0, "{name} for {arch} is empty");
            eprintln!("compiled {name} for {arch}: {bytes} bytes");
        }
    }
}
