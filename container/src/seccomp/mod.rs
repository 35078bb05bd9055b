//! seccomp filters: a [`Profile`] (our own form of the OCI
//! `linux.seccomp` object), the RuntimeDefault one
//! ([`runtime_default`], containerd's), Localhost ones read from OCI JSON
//! ([`Profile::from_oci_json`]), compiled to BPF in the parent
//! ([`Profile::compile`], with `seccompiler`'s rules, the syscall numbers
//! of the `syscalls` crate, and the numbers in a search tree, [`tree`])
//! and installed by the child just before exec
//! ([`crate::Command::seccomp`]). Deciding which profile a container gets
//! is the caller's.
//!
//! seccompiler gives one action on match and one on mismatch per filter,
//! where an OCI profile has one action per rule. A profile is compiled to
//! a stack of filters, which the kernel runs all of, keeping the most
//! restrictive answer (and, among answers of one kind, the most recently
//! installed filter's): first a filter that allows every system call some
//! rule names (under the rule's argument conditions) and answers the
//! default action for the rest, then one filter per other action, which
//! answers that action for its rules and allows the rest. A call that a
//! rule of action A matches gets A; any other call the default action.

mod default;
mod oci;
pub(crate) mod sys;
mod tree;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule, TargetArch,
};

use crate::caps::CapSet;

pub use default::runtime_default as runtime_default_for_arch;

/// The RuntimeDefault profile for a container whose final capability
/// (bounding) set is `caps`, on this machine's architecture.
pub fn runtime_default(caps: CapSet) -> Profile {
    default::runtime_default(caps, std::env::consts::ARCH)
}

/// What a filter answers for a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Run it.
    Allow,
    /// Fail it with this errno.
    Errno(u32),
    /// Kill the thread (`SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`).
    KillThread,
    /// Kill the process.
    KillProcess,
    /// SIGSYS.
    Trap,
    /// Notify a ptrace tracer with this value (ENOSYS without one).
    Trace(u32),
    /// Run it and log it.
    Log,
}

/// A comparison of one system call argument (OCI `args[].op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `SCMP_CMP_NE`.
    Ne,
    /// `SCMP_CMP_LT`.
    Lt,
    /// `SCMP_CMP_LE`.
    Le,
    /// `SCMP_CMP_EQ`.
    Eq,
    /// `SCMP_CMP_GE`.
    Ge,
    /// `SCMP_CMP_GT`.
    Gt,
    /// `SCMP_CMP_MASKED_EQ`: `arg & value == value_two`.
    MaskedEq,
}

/// One argument condition (OCI `args[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgFilter {
    /// Which argument, 0 to 5.
    pub index: u8,
    /// The value compared (the mask for [`CmpOp::MaskedEq`]).
    pub value: u64,
    /// The value the masked argument must equal ([`CmpOp::MaskedEq`]).
    pub value_two: u64,
    /// The comparison.
    pub op: CmpOp,
}

/// One entry of `syscalls[]`: these names get `action` when every
/// condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// System call names.
    pub names: Vec<String>,
    /// What they get.
    pub action: Action,
    /// Conditions, all of which must hold (see [`Profile::compile`] for
    /// several on one argument).
    pub args: Vec<ArgFilter>,
}

/// A seccomp profile: OCI runtime-spec `linux.seccomp`, in our own types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// For calls no rule matches.
    pub default_action: Action,
    /// `SCMP_ARCH_*` names (checked; only the native one is filtered).
    pub architectures: Vec<String>,
    /// `SECCOMP_FILTER_FLAG_*` names.
    pub flags: Vec<String>,
    /// The rules.
    pub syscalls: Vec<Rule>,
}

/// Why a profile cannot be had or compiled. `profile` names it: a file,
/// or `RuntimeDefault`.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The file cannot be read.
    #[error("seccomp profile {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is no JSON of the expected shape.
    #[error("seccomp profile {profile}: line {line} column {column}: {message}")]
    Json {
        /// The profile.
        profile: String,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// The field's path and what is wrong.
        message: String,
    },
    /// A field has a value that cannot be used.
    #[error("seccomp profile {profile}: {field}: {value:?}: {reason}")]
    Field {
        /// The profile.
        profile: String,
        /// The field, e.g. `syscalls[2].args[0].op`.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// seccompiler refused the filter (too large, ...).
    #[error("seccomp profile {profile}: cannot compile: {reason}")]
    Compile {
        /// The profile.
        profile: String,
        /// What seccompiler said.
        reason: String,
    },
    /// A saved program ([`SavedProgram`]) cannot be installed.
    #[error("saved seccomp program: {reason}")]
    Saved {
        /// What is wrong.
        reason: String,
    },
}

/// A compiled profile: the BPF programs to install, in order. Cheap to
/// clone (shared).
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) filters: Arc<Vec<Vec<seccompiler::sock_filter>>>,
    pub(crate) flags: u32,
    /// System call names the architecture does not know, ignored as runc
    /// and libseccomp ignore them.
    pub unknown_names: Arc<[String]>,
    /// Architectures of the profile other than the native one: their
    /// system calls are not filtered by rule but killed (seccompiler
    /// filters one architecture).
    pub other_architectures: Arc<[String]>,
    /// Whether it allows `poll` whatever the arguments: what an armed
    /// parked process waits in (see [`crate::Parked::arm`]).
    pub(crate) allows_poll: bool,
}

impl Program {
    /// Whether it and `other` share their filters (one compiled program,
    /// cloned).
    pub fn shares_filters(&self, other: &Program) -> bool {
        Arc::ptr_eq(&self.filters, &other.filters)
    }

    /// How many filters it installs (0: a profile that allows everything).
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// The program as it is installed, for another process to install the
    /// same filters (`supervisor exec` gives an exec the container's own).
    pub fn to_saved(&self) -> SavedProgram {
        SavedProgram {
            flags: self.flags,
            filters: self
                .filters
                .iter()
                .map(|f| f.iter().map(encode_instruction).collect())
                .collect(),
        }
    }

    /// The program [`Program::to_saved`] saved, checked to be installable:
    /// every filter has 1 to [`MAX_INSTRUCTIONS`] instructions and the
    /// flags are ones this crate sets (the kernel checks the rest when it
    /// is installed).
    pub fn from_saved(saved: &SavedProgram) -> Result<Program, SeccompError> {
        let known_flags = FLAGS.iter().fold(0, |all, (_, value)| all | value);
        if saved.flags & !known_flags != 0 {
            return Err(SeccompError::Saved {
                reason: format!("flags {:#x} are not ones a profile sets", saved.flags),
            });
        }
        if let Some((i, f)) = saved
            .filters
            .iter()
            .enumerate()
            .find(|(_, f)| f.is_empty() || f.len() > MAX_INSTRUCTIONS)
        {
            return Err(SeccompError::Saved {
                reason: format!(
                    "filter {i} has {} instructions (1 to {MAX_INSTRUCTIONS})",
                    f.len()
                ),
            });
        }
        Ok(Program {
            filters: Arc::new(
                saved
                    .filters
                    .iter()
                    .map(|f| f.iter().map(|w| decode_instruction(*w)).collect())
                    .collect(),
            ),
            flags: saved.flags,
            unknown_names: Arc::from([]),
            other_architectures: Arc::from([]),
            // Not known from the instructions; nothing parked uses one.
            allows_poll: false,
        })
    }
}

/// The most instructions one classic BPF filter may have (the kernel's
/// `BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// A compiled [`Program`] in a serializable form: its flags and each
/// filter's instructions, one `u64` each (`code << 48 | jt << 40 | jf <<
/// 32 | k`, the fields of `struct sock_filter`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedProgram {
    /// `SECCOMP_FILTER_FLAG_*` of the `seccomp(2)` calls.
    pub flags: u32,
    /// The filters, in the order they are installed.
    pub filters: Vec<Vec<u64>>,
}

fn encode_instruction(i: &seccompiler::sock_filter) -> u64 {
    (u64::from(i.code) << 48) | (u64::from(i.jt) << 40) | (u64::from(i.jf) << 32) | u64::from(i.k)
}

fn decode_instruction(w: u64) -> seccompiler::sock_filter {
    seccompiler::sock_filter {
        code: (w >> 48) as u16,
        jt: (w >> 40) as u8,
        jf: (w >> 32) as u8,
        k: w as u32,
    }
}

/// Names of the `SCMP_ARCH_*` values of libseccomp (runtime-spec
/// `config-linux.md#seccomp`) and the `std::env::consts::ARCH` they are.
const ARCHITECTURES: &[(&str, &str)] = &[
    ("SCMP_ARCH_X86", "x86"),
    ("SCMP_ARCH_X86_64", "x86_64"),
    ("SCMP_ARCH_X32", "x32"),
    ("SCMP_ARCH_ARM", "arm"),
    ("SCMP_ARCH_AARCH64", "aarch64"),
    ("SCMP_ARCH_MIPS", "mips"),
    ("SCMP_ARCH_MIPS64", "mips64"),
    ("SCMP_ARCH_MIPS64N32", "mips64n32"),
    ("SCMP_ARCH_MIPSEL", "mipsel"),
    ("SCMP_ARCH_MIPSEL64", "mipsel64"),
    ("SCMP_ARCH_MIPSEL64N32", "mipsel64n32"),
    ("SCMP_ARCH_PPC", "powerpc"),
    ("SCMP_ARCH_PPC64", "powerpc64"),
    ("SCMP_ARCH_PPC64LE", "powerpc64le"),
    ("SCMP_ARCH_S390", "s390"),
    ("SCMP_ARCH_S390X", "s390x"),
    ("SCMP_ARCH_PARISC", "parisc"),
    ("SCMP_ARCH_PARISC64", "parisc64"),
    ("SCMP_ARCH_RISCV64", "riscv64"),
    ("SCMP_ARCH_LOONGARCH64", "loongarch64"),
    ("SCMP_ARCH_M68K", "m68k"),
    ("SCMP_ARCH_SH", "sh"),
    ("SCMP_ARCH_SHEB", "sheb"),
];

/// `SECCOMP_FILTER_FLAG_*` names runc passes on (runc
/// `libcontainer/seccomp/seccomp_linux.go`), with their values.
const FLAGS: &[(&str, u32)] = &[
    // One thread here: TSYNC changes nothing.
    ("SECCOMP_FILTER_FLAG_TSYNC", 0),
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 0),
];

/// The number of system call `name` on this architecture.
fn syscall_number(name: &str) -> Option<u32> {
    syscalls::Sysno::from_str(name)
        .ok()
        .and_then(|s| u32::try_from(s.id()).ok())
}

fn seccompiler_action(action: Action) -> SeccompAction {
    match action {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(e),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Trace(v) => SeccompAction::Trace(v),
        Action::Log => SeccompAction::Log,
    }
}

/// Makes one filter's BPF: [`tree::build`].
type BuildFilter = fn(
    BTreeMap<u32, Vec<SeccompRule>>,
    SeccompAction,
    SeccompAction,
    TargetArch,
) -> Result<Vec<seccompiler::sock_filter>, seccompiler::BackendError>;

/// The rules of one filter: per system call number, None = always, else
/// any of these condition lists.
type Chains = BTreeMap<u32, Option<Vec<Vec<SeccompCondition>>>>;

fn condition(a: &ArgFilter) -> Result<SeccompCondition, String> {
    let (op, value) = match a.op {
        CmpOp::Ne => (SeccompCmpOp::Ne, a.value),
        CmpOp::Lt => (SeccompCmpOp::Lt, a.value),
        CmpOp::Le => (SeccompCmpOp::Le, a.value),
        CmpOp::Eq => (SeccompCmpOp::Eq, a.value),
        CmpOp::Ge => (SeccompCmpOp::Ge, a.value),
        CmpOp::Gt => (SeccompCmpOp::Gt, a.value),
        CmpOp::MaskedEq => (SeccompCmpOp::MaskedEq(a.value), a.value_two),
    };
    // libseccomp compares all 64 bits on 64-bit architectures.
    SeccompCondition::new(a.index, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// A rule's condition lists, as runc adds them to libseccomp: all in one
/// rule (ANDed), unless two are on the same argument, which libseccomp
/// cannot AND: then one rule per condition (ORed).
fn condition_lists(rule: &Rule) -> Result<Vec<Vec<SeccompCondition>>, String> {
    let conditions = rule
        .args
        .iter()
        .map(condition)
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = [0u8; 6];
    for a in &rule.args {
        if let Some(n) = seen.get_mut(usize::from(a.index)) {
            *n += 1;
        }
    }
    if seen.iter().any(|n| *n > 1) {
        Ok(conditions.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conditions])
    }
}

fn add(chains: &mut Chains, nr: u32, lists: &[Vec<SeccompCondition>]) {
    let entry = chains.entry(nr).or_insert_with(|| Some(Vec::new()));
    if lists.iter().any(Vec::is_empty) {
        *entry = None;
    } else if let Some(existing) = entry {
        existing.extend(lists.iter().cloned());
    }
}

impl Profile {
    /// The profile in a Localhost file (OCI runtime-spec JSON); errors
    /// name the file, the field and the value.
    pub fn from_oci_file(path: &std::path::Path) -> Result<Profile, SeccompError> {
        let text = std::fs::read(path).map_err(|source| SeccompError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::from_oci_json(&text, &path.display().to_string())
    }

    /// The profile in `json` (OCI runtime-spec `linux.seccomp`); `origin`
    /// names it in errors.
    pub fn from_oci_json(json: &[u8], origin: &str) -> Result<Profile, SeccompError> {
        oci::parse(json, origin)
    }

    /// Compile for this machine's architecture; `origin` names the
    /// profile in errors.
    pub fn compile(&self, origin: &str) -> Result<Program, SeccompError> {
        self.compile_with(origin, tree::build)
    }

    /// [`Profile::compile`] with `build` making each filter's BPF from its
    /// rules, mismatch and match actions.
    fn compile_with(&self, origin: &str, build: BuildFilter) -> Result<Program, SeccompError> {
        let field = |field: String, value: String, reason: &str| SeccompError::Field {
            profile: origin.to_string(),
            field,
            value,
            reason: reason.to_string(),
        };
        let native = std::env::consts::ARCH;
        let mut other_architectures = Vec::new();
        for (i, a) in self.architectures.iter().enumerate() {
            match ARCHITECTURES.iter().find(|(name, _)| name == a) {
                None => {
                    return Err(field(
                        format!("architectures[{i}]"),
                        a.clone(),
                        "unknown architecture (SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)",
                    ));
                }
                Some((_, arch)) if *arch == native => {}
                Some(_) => other_architectures.push(a.clone()),
            }
        }
        let mut flags = 0;
        for (i, f) in self.flags.iter().enumerate() {
            match FLAGS.iter().find(|(name, _)| name == f) {
                Some((_, value)) => flags |= value,
                None => {
                    return Err(field(
                        format!("flags[{i}]"),
                        f.clone(),
                        "unknown flag (SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_TSYNC)",
                    ));
                }
            }
        }
        let target = TargetArch::try_from(native).map_err(|e| SeccompError::Compile {
            profile: origin.to_string(),
            reason: format!("architecture {native}: {e}"),
        })?;
        // The first filter: every rule's calls allowed, the default for
        // the rest. Then one per other action.
        let mut first = Chains::new();
        let mut by_action: BTreeMap<Action, Chains> = BTreeMap::new();
        let mut unknown_names = Vec::new();
        for (i, rule) in self.syscalls.iter().enumerate() {
            let lists = condition_lists(rule)
                .map_err(|reason| field(format!("syscalls[{i}].args"), String::new(), &reason))?;
            for name in &rule.names {
                let Some(nr) = syscall_number(name) else {
                    if !unknown_names.contains(name) {
                        unknown_names.push(name.clone());
                    }
                    continue;
                };
                add(&mut first, nr, &lists);
                if rule.action != Action::Allow {
                    add(by_action.entry(rule.action).or_default(), nr, &lists);
                }
            }
        }
        // poll is allowed whatever its arguments when the first filter
        // allows it so (or there is none) and no other action names it.
        let allows_poll = syscall_number("poll").is_some_and(|nr| {
            let first_allows =
                self.default_action == Action::Allow || matches!(first.get(&nr), Some(None));
            first_allows && by_action.values().all(|chains| !chains.contains_key(&nr))
        });
        let mut stack = Vec::new();
        if self.default_action != Action::Allow {
            stack.push((first, Action::Allow, self.default_action));
        }
        for (action, chains) in by_action {
            stack.push((chains, action, Action::Allow));
        }
        let mut filters = Vec::new();
        for (chains, on_match, on_mismatch) in stack {
            let rules = chains
                .into_iter()
                .map(|(nr, lists)| {
                    let rules = lists
                        .unwrap_or_default()
                        .into_iter()
                        .map(SeccompRule::new)
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((nr, rules))
                })
                .collect::<Result<BTreeMap<_, _>, seccompiler::BackendError>>()
                .and_then(|rules| {
                    build(
                        rules,
                        seccompiler_action(on_mismatch),
                        seccompiler_action(on_match),
                        target,
                    )
                })
                .map_err(|e| SeccompError::Compile {
                    profile: origin.to_string(),
                    reason: e.to_string(),
                })?;
            filters.push(rules.into_iter().collect());
        }
        Ok(Program {
            filters: Arc::new(filters),
            flags,
            unknown_names: unknown_names.into(),
            other_architectures: other_architectures.into(),
            allows_poll,
        })
    }
}

#[cfg(test)]
mod tests;
