//! Link pause as a libc-free, static, non-PIE ELF.
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
    // The shipped binary carries no symbol table (cargo's `strip` does not
    // reach a binary linked with these flags).
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
