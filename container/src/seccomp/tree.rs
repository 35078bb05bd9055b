//! One filter's BPF with its system call numbers in a binary search tree,
//! as libseccomp's `SCMP_FLTATR_CTL_OPTIMIZE=2` builds it, where
//! seccompiler tests the numbers one after the other.
//!
//! Why: when a filter is installed, the kernel runs it once for every
//! system call number to learn which are allowed whatever the arguments
//! (its action cache, `seccomp_cache_prepare_bitmap`, Linux 5.11). Over
//! seccompiler's chain of about 350 comparisons that is some 300,000 BPF
//! steps, 0.6 ms of each container's start (measured here); over the tree,
//! about 20 a number. A call runs the same rules either way: each number's
//! rules are seccompiler's (`BpfProgram::from(SeccompRule)`), in the order
//! it gives them, with the same actions; only the way to them changes.
//!
//! The layout: seccompiler's architecture check, the number loaded, then
//! the tree over intervals of numbers. Every interval has one outcome: the
//! filter's match action (numbers with an unconditional rule), its
//! mismatch action (numbers no rule names), or one number's rule chain.
//! Neighbouring intervals with one action are one, so a run of allowed
//! numbers costs one leaf. An inner node is one `JGE` to its right half;
//! the interval a leaf is reached in is known from the path, so a leaf
//! compares nothing.

use std::collections::BTreeMap;

use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch, sock_filter,
};

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
/// `offsetof(struct seccomp_data, nr)`.
const SECCOMP_DATA_NR: u32 = 0;
/// The kernel's `BPF_MAXINSNS`.
const MAX_LEN: usize = 4096;

/// What a leaf of the tree does.
#[derive(Debug, PartialEq)]
enum Leaf {
    /// Return the match action.
    Match,
    /// Return the mismatch action.
    Mismatch,
    /// One number's rules.
    Rules(Vec<sock_filter>),
}

/// The filter that answers `match_action` for the calls `rules` name
/// (under any one of their rules, none: always) and `mismatch_action` for
/// the rest: what `SeccompFilter::new(rules, mismatch_action,
/// match_action, arch)` answers.
pub(super) fn build(
    rules: BTreeMap<u32, Vec<SeccompRule>>,
    mismatch_action: SeccompAction,
    match_action: SeccompAction,
    arch: TargetArch,
) -> Result<Vec<sock_filter>, BackendError> {
    let on_match = u32::from(match_action.clone());
    let on_mismatch = u32::from(mismatch_action.clone());
    // seccompiler's filter with no rules: its architecture check, then
    // the mismatch action (its identical-actions check comes with it).
    let mut program = BpfProgram::try_from(SeccompFilter::new(
        BTreeMap::new(),
        mismatch_action,
        match_action,
        arch,
    )?)?;
    program.pop();
    program.push(stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR));

    let mut intervals: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf: Leaf| {
        let merges = matches!(
            (intervals.last(), &leaf),
            (Some((_, Leaf::Match)), Leaf::Match) | (Some((_, Leaf::Mismatch)), Leaf::Mismatch)
        );
        if !merges {
            intervals.push((start, leaf));
        }
    };
    let mut next = Some(0u32);
    for (nr, chain) in rules {
        match next {
            Some(first) if first < nr => push(first, Leaf::Mismatch),
            _ => {}
        }
        push(nr, leaf(chain, on_match, on_mismatch));
        next = nr.checked_add(1);
    }
    if let Some(first) = next {
        push(first, Leaf::Mismatch);
    }
    tree(&intervals, on_match, on_mismatch, &mut program);
    if program.len() > MAX_LEN {
        return Err(BackendError::FilterTooLarge(program.len()));
    }
    Ok(program)
}

/// One number's leaf: seccompiler's rule chain for it (each rule's BPF and
/// the match action; after the last, the mismatch action), or the match
/// action for no rule.
fn leaf(chain: Vec<SeccompRule>, on_match: u32, on_mismatch: u32) -> Leaf {
    if chain.is_empty() {
        return Leaf::Match;
    }
    let mut body = Vec::new();
    for rule in chain {
        body.extend(BpfProgram::from(rule));
        body.push(stmt(BPF_RET_K, on_match));
    }
    body.push(stmt(BPF_RET_K, on_mismatch));
    Leaf::Rules(body)
}

/// The tree over `intervals` (sorted by start, the first one starting at
/// or below every number that reaches it), appended to `out`.
fn tree(intervals: &[(u32, Leaf)], on_match: u32, on_mismatch: u32, out: &mut Vec<sock_filter>) {
    if let [(_, only)] = intervals {
        match only {
            Leaf::Match => out.push(stmt(BPF_RET_K, on_match)),
            Leaf::Mismatch => out.push(stmt(BPF_RET_K, on_mismatch)),
            Leaf::Rules(body) => out.extend_from_slice(body),
        }
        return;
    }
    let (left, right) = intervals.split_at(intervals.len() / 2);
    let mut left_code = Vec::new();
    tree(left, on_match, on_mismatch, &mut left_code);
    let pivot = right[0].0;
    // nr >= pivot: over the left half; a far one through a JA.
    match u8::try_from(left_code.len()) {
        Ok(over) => out.push(jump(BPF_JMP_JGE_K, pivot, over, 0)),
        Err(_) => {
            out.push(jump(BPF_JMP_JGE_K, pivot, 0, 1));
            // At most MAX_LEN, checked at the end.
            out.push(stmt(
                BPF_JMP_JA,
                u32::try_from(left_code.len()).unwrap_or(u32::MAX),
            ));
        }
    }
    out.extend(left_code);
    tree(right, on_match, on_mismatch, out);
}

fn stmt(code: u16, k: u32) -> sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}
