//! The command line and the environment, as the kernel left them on the
//! initial stack: `argc`, the argv pointers, a NULL, the envp pointers, a
//! NULL (the SysV x86_64 ABI). Nothing is copied: every string lives as
//! long as the process, NUL-terminated.

/// The arguments and the environment found at `stack`.
///
/// # Safety
/// `stack` must be the stack pointer the kernel handed to `_start`.
pub(crate) unsafe fn from_initial_stack(stack: *const usize) -> (Args, Envp) {
    // SAFETY: per the ABI the kernel put argc at `stack`, then argc argv
    // pointers and a NULL, then the envp pointers and a NULL.
    unsafe {
        let argc = *stack;
        let argv = stack.add(1) as *const *const u8;
        let args = Args {
            next: argv.add(argc.min(1)),
            end: argv.add(argc),
        };
        (args, Envp(argv.add(argc + 1)))
    }
}

/// The command-line arguments after argv[0].
pub struct Args {
    next: *const *const u8,
    end: *const *const u8,
}

impl Args {
    /// The arguments not yet taken, as the NULL-terminated array execve
    /// wants (the kernel's argv ends in NULL).
    pub fn rest(&self) -> Argv {
        Argv(self.next)
    }
}

impl Iterator for Args {
    type Item = Arg;

    fn next(&mut self) -> Option<Arg> {
        if self.next >= self.end {
            return None;
        }
        // SAFETY: `next` is within argv[1..argc], so it is readable.
        let arg = unsafe { *self.next };
        // SAFETY: still within argv[0..=argc] after the increment.
        self.next = unsafe { self.next.add(1) };
        Some(Arg(arg))
    }
}

/// One argument or environment entry: a NUL-terminated string that lives
/// as long as the process.
#[derive(Clone, Copy)]
pub struct Arg(*const u8);

impl Arg {
    /// Whether the argument is exactly `text` (which holds no NUL). Compares
    /// byte by byte and stops at the first difference: no strlen, which
    /// makes it the cheaper test when only a few flags are looked for.
    pub fn is(self, text: &[u8]) -> bool {
        for (i, &expected) in text.iter().enumerate() {
            // SAFETY: bytes 0..=i are readable: none before i was NUL,
            // because each equalled a byte of `text`.
            if unsafe { *self.0.add(i) } != expected {
                return false;
            }
        }
        // SAFETY: as above, byte `text.len()` is at most the terminator.
        unsafe { *self.0.add(text.len()) == 0 }
    }

    /// Its bytes, without the NUL.
    pub fn bytes(self) -> &'static [u8] {
        let with_nul = self.with_nul();
        &with_nul[..with_nul.len() - 1]
    }

    /// Its bytes and the NUL.
    fn with_nul(self) -> &'static [u8] {
        // SAFETY: the string is NUL-terminated, so every byte up to and
        // including the NUL is readable, and nothing writes to it.
        unsafe { core::slice::from_raw_parts(self.0, crate::mem::strlen(self.0) + 1) }
    }
}

/// A NULL-terminated array of arguments, as execve takes it.
#[derive(Clone, Copy)]
pub struct Argv(*const *const u8);

impl Argv {
    /// The first entry (the program), if any.
    pub fn first(self) -> Option<Arg> {
        // SAFETY: the array is NULL-terminated, so entry 0 is readable.
        let first = unsafe { *self.0 };
        (!first.is_null()).then_some(Arg(first))
    }

    /// The number of entries before the NULL.
    pub fn len(self) -> usize {
        let mut n = 0;
        // SAFETY: NULL-terminated: entries up to the NULL are readable.
        while !unsafe { *self.0.add(n) }.is_null() {
            n += 1;
        }
        n
    }

    pub fn is_empty(self) -> bool {
        self.first().is_none()
    }

    /// The array itself, for execve.
    pub fn as_ptr(self) -> *const *const u8 {
        self.0
    }
}

/// The environment as the kernel passed it (NULL-terminated).
#[derive(Clone, Copy)]
pub struct Envp(*const *const u8);

impl Envp {
    /// The entries, `NAME=value` each.
    pub fn iter(self) -> impl Iterator<Item = &'static [u8]> {
        let mut at = self.0;
        core::iter::from_fn(move || {
            // SAFETY: NULL-terminated: entries up to the NULL are readable,
            // and `at` never moves past it.
            let entry = unsafe { *at };
            if entry.is_null() {
                return None;
            }
            // SAFETY: as above, the next slot is at most the NULL.
            at = unsafe { at.add(1) };
            Some(Arg(entry).bytes())
        })
    }

    /// The array itself, for execve.
    pub fn as_ptr(self) -> *const *const u8 {
        self.0
    }
}
