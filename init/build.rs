//! Link supervisor-init as a libc-free, static, non-PIE ELF.
//!
//! The binary brings its own `_start` (see `src/sys.rs`), so no C runtime,
//! no libc and no dynamic loader are linked. These arguments apply to the
//! binary only (`rustc-link-arg-bins`), so a plain `cargo build` in the
//! workspace produces it: no RUSTFLAGS, no `--target`, no musl.

fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,--no-eh-frame-hdr",
        "-Wl,-z,norelro",
        "-Wl,-z,noseparate-code",
        "-Wl,--gc-sections",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        // The shipped binary's layout: one read + execute segment, nothing
        // that is not loaded or needed (see init.ld). Every input section
        // must be placed by the script, so a new one fails the link instead
        // of landing somewhere by default.
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/init.ld");
        println!("cargo:rustc-link-arg-bins=-Wl,--orphan-handling=error");
        // No symbol table (cargo's `strip` does not reach a binary linked
        // with these flags).
        println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=init.ld");
}
