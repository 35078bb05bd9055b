//! The memory and string functions the compiler emits calls to (copies,
//! fills and comparisons of arrays, a loop that finds a NUL); with no libc,
//! they are here. Written with `rep movsb` / `rep stosb` and volatile reads
//! so that the compiler cannot turn their loops back into calls to
//! themselves. A binary that never needs one (pause) loses it to
//! `--gc-sections`.

use core::arch::asm;

/// # Safety
/// As C's memcpy: `n` bytes readable at `src`, writable at `dest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; rep movsb copies forwards with DF
    // clear (the ABI guarantees DF = 0 on entry).
    unsafe {
        asm!("rep movsb", inout("rdi") dest => _, inout("rsi") src => _, inout("rcx") n => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// As C's memmove: `n` bytes readable at `src`, writable at `dest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is before src, or past its end: a forward copy is safe.
        // SAFETY: the caller's contract.
        unsafe { memcpy(dest, src, n) };
    } else {
        // Overlapping with dest after src: copy backwards (DF set for the
        // copy, cleared again as the ABI wants).
        // SAFETY: the caller's contract; the pointers start at the last
        // byte of each range.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rdi") dest.add(n).wrapping_sub(1) => _,
                 inout("rsi") src.add(n).wrapping_sub(1) => _,
                 inout("rcx") n => _,
                 options(nostack));
        }
    }
    dest
}

/// # Safety
/// As C's memset: `n` bytes writable at `dest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, byte: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; DF is clear.
    unsafe {
        asm!("rep stosb", inout("rdi") dest => _, inout("rcx") n => _, in("al") byte as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// As C's memcmp: `n` bytes readable at `a` and at `b`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller's contract: i < n. Volatile so the loop stays
        // a loop.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// As C's strlen: a NUL-terminated string at `s`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut len = 0;
    // SAFETY: the caller's contract: every byte up to the NUL is readable.
    // Volatile so the loop stays a loop (not a call to strlen).
    while unsafe { s.add(len).read_volatile() } != 0 {
        len += 1;
    }
    len
}

/// # Safety
/// As C's bcmp: `n` bytes readable at `a` and at `b`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract.
    unsafe { memcmp(a, b, n) }
}
