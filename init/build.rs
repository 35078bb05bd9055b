//! Link supervisor-init as a libc-free, static, non-PIE ELF: the arguments
//! and the release linker script are nolibc-rt's, shared with pause.

fn main() {
    nolibc_rt::link::static_binary();
}
