//! The supervisor's own memory while it waits. Reading the manifest, the
//! command line and the CNI configuration runs code (YAML and JSON parsers,
//! clap) that the event loop never runs again, and a restart runs code
//! (spawning, the status, the logs) that an idle loop does not; their pages
//! stay mapped: up to 3 MB of a 4 MB binary, resident and counted in the
//! process's Pss. [`drop_idle_code`], called when the loop goes idle with
//! nothing scheduled, unmaps the binary's code pages; what runs next comes
//! back as minor faults from the page cache (the file stays cached: nothing
//! is read from disk again), one page at a time (MADV_RANDOM: no
//! fault-around). The madvise and malloc_trim calls are in `sys`.

use std::path::Path;

use crate::sys;

/// A whole mapping of our own executable that is private, not writable,
/// and holds no anonymous page: dropping its pages loses nothing. Only
/// [`clean_ranges`] makes one, from /proc/self/smaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanMapping {
    start: usize,
    end: usize,
}

impl CleanMapping {
    /// Its first address.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Its length in bytes.
    pub fn size(&self) -> usize {
        self.end - self.start
    }
}

/// madvise(MADV_DONTNEED) the binary's clean, private, file-backed
/// mappings: its code (`r-xp`) and its read-only data (`r--p`) when none of
/// its pages is anonymous (the RELRO part of `r--p` was written at start-up
/// by the dynamic linker: those copies must stay). Nothing is lost: every
/// page dropped is the file's. Then the C allocator gives free heap pages
/// back (malloc_trim). Returns the bytes of the mappings dropped.
pub fn drop_idle_code() -> usize {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let released = clean_ranges(&smaps, &exe)
        .iter()
        .filter(|mapping| sys::drop_mapping_pages(mapping))
        .map(CleanMapping::size)
        .sum();
    sys::trim_heap();
    released
}

/// The mappings of `exe` in /proc/self/smaps text that are private, not
/// writable, and hold no anonymous page.
fn clean_ranges(smaps: &str, exe: &Path) -> Vec<CleanMapping> {
    let mut ranges = Vec::new();
    // The mapping being read: its range, if it is a candidate so far.
    let mut current: Option<CleanMapping> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            // A mapping header: range perms offset dev inode path.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let candidate = matches!(perms, "r-xp" | "r--p") && Path::new(path) == exe;
            current = candidate.then_some(CleanMapping { start, end });
        } else if first == "Anonymous:"
            && let Some(range) = current.take()
            && fields.next() == Some("0")
        {
            ranges.push(range);
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_binarys_clean_read_only_mappings_are_picked() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fd:01 42 /usr/bin/supervisor
Rss:                 100 kB
Anonymous:             0 kB
55d0a0100000-55d0a0400000 r-xp 00100000 fd:01 42 /usr/bin/supervisor
Anonymous:             0 kB
55d0a0400000-55d0a0500000 r--p 00400000 fd:01 42 /usr/bin/supervisor
Anonymous:            48 kB
55d0a0500000-55d0a0510000 rw-p 00500000 fd:01 42 /usr/bin/supervisor
Anonymous:             8 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 7 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
Anonymous:           132 kB
";
        assert_eq!(
            clean_ranges(smaps, Path::new("/usr/bin/supervisor")),
            [
                CleanMapping {
                    start: 0x55d0a0000000,
                    end: 0x55d0a0100000
                },
                CleanMapping {
                    start: 0x55d0a0100000,
                    end: 0x55d0a0400000
                }
            ]
        );
    }

    #[test]
    fn dropping_the_pages_keeps_the_process_running() {
        // This test binary's own code and constants run afterwards.
        let released = drop_idle_code();
        assert!(released > 0);
        let text = format!("{released} bytes");
        assert!(text.ends_with(" bytes"));
    }
}
