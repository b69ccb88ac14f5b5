//! Compiles the eBPF program with clang (`CLANG` overrides which) and libbpf's headers
//! (Debian: `clang libbpf-dev`). Without them the crate builds, and the kernel's path says
//! at start that it was not built.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(bpf_built)");
    println!("cargo::rerun-if-changed=bpf/forward.c");
    println!("cargo::rerun-if-env-changed=CLANG");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("forward.o");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("target arch");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let built = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .args(["-c", "bpf/forward.c", "-o"])
        .arg(&out)
        .status();
    match built {
        Ok(s) if s.success() => println!("cargo::rustc-cfg=bpf_built"),
        Ok(s) => println!("cargo::warning=the relay's kernel path is not built: {clang} failed ({s}); install clang and libbpf-dev"),
        Err(e) => println!("cargo::warning=the relay's kernel path is not built: {clang}: {e}; install clang and libbpf-dev"),
    }
}
