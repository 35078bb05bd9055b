//! For a binary's build script: link the binary as a libc-free, static,
//! non-PIE ELF started at this crate's `_start`.
//!
//! The arguments must come from the binary's own build script: cargo
//! applies `rustc-link-arg-bins` only to the package whose script prints
//! it, never to a dependent's binaries. So this crate is also the binary's
//! build-dependency (feature `link`), and its `build.rs` is one call:
//!
//! ```ignore
//! fn main() {
//!     nolibc_rt::link::static_binary();
//! }
//! ```
//!
//! They apply to the binary only (`-bins`), so a plain `cargo build` in the
//! workspace produces it: no RUSTFLAGS, no `--target`, no musl.

extern crate std;

use std::println;

/// The release layout, shared by every binary of this crate (see the
/// script's header): one read + execute segment, nothing writable.
const LINKER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/static.ld");

/// Print the linker arguments for the package's binaries.
pub fn static_binary() {
    for arg in [
        // Our `_start`, not crt1.o's; no libc, no libgcc.
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
        // that is not loaded or needed. Every input section must be placed
        // by the script, so a new one fails the link instead of landing
        // somewhere by default. Debug builds keep the linker's default
        // layout (they carry writable data from `core`).
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{LINKER_SCRIPT}");
        println!("cargo:rustc-link-arg-bins=-Wl,--orphan-handling=error");
        // No symbol table (cargo's `strip` does not reach a binary linked
        // with these flags).
        println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
    }
    println!("cargo:rerun-if-changed={LINKER_SCRIPT}");
    println!("cargo:rerun-if-changed=build.rs");
}
