//! Reading a Localhost profile: the OCI runtime-spec `linux.seccomp`
//! object in JSON (`config-linux.md#seccomp`: defaultAction,
//! defaultErrnoRet, architectures, flags, syscalls[{names, action,
//! errnoRet, args[{index, value, valueTwo, op}]}]), as containerd reads
//! one (`internal/cri/sputil/seccomp_linux.go` unmarshals the file into
//! `specs.LinuxSeccomp`; unknown fields, such as moby's `archMap` or
//! `includes`, are ignored as Go's decoder ignores them). Actions and
//! errno defaults are runc's (`libcontainer/seccomp/config.go`): ERRNO and
//! TRACE answer EPERM without an errnoRet, `SCMP_ACT_KILL` kills the
//! thread. `SCMP_ACT_NOTIFY` needs a seccomp agent and is refused.

use serde::Deserialize;

use super::{Action, ArgFilter, CmpOp, Profile, Rule, SeccompError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    flags: Option<Vec<String>>,
    syscalls: Option<Vec<RawSyscall>>,
    listener_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSyscall {
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<RawArg>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// The largest errno the kernel returns (MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;

pub(super) fn parse(json: &[u8], origin: &str) -> Result<Profile, SeccompError> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    let raw: RawProfile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        };
        SeccompError::Json {
            profile: origin.to_string(),
            line: inner.line(),
            column: inner.column(),
            message,
        }
    })?;
    let field = |field: String, value: String, reason: &str| SeccompError::Field {
        profile: origin.to_string(),
        field,
        value,
        reason: reason.to_string(),
    };
    if let Some(listener) = raw.listener_path.filter(|l| !l.is_empty()) {
        return Err(field(
            "listenerPath".into(),
            listener,
            "seccomp agents (SCMP_ACT_NOTIFY) are not supported",
        ));
    }
    let default_action = action(&raw.default_action, raw.default_errno_ret)
        .map_err(|reason| field("defaultAction".into(), raw.default_action.clone(), &reason))?;
    let mut syscalls = Vec::new();
    for (i, s) in raw.syscalls.unwrap_or_default().into_iter().enumerate() {
        let names = s.names.unwrap_or_default();
        if names.is_empty() {
            return Err(field(
                format!("syscalls[{i}].names"),
                String::new(),
                "must name at least one system call",
            ));
        }
        if let Some(n) = names.iter().position(|n| n.is_empty()) {
            return Err(field(
                format!("syscalls[{i}].names[{n}]"),
                String::new(),
                "empty system call name",
            ));
        }
        let act = action(&s.action, s.errno_ret)
            .map_err(|reason| field(format!("syscalls[{i}].action"), s.action.clone(), &reason))?;
        let mut args = Vec::new();
        for (j, a) in s.args.unwrap_or_default().into_iter().enumerate() {
            let index = u8::try_from(a.index)
                .ok()
                .filter(|n| *n < 6)
                .ok_or_else(|| {
                    field(
                        format!("syscalls[{i}].args[{j}].index"),
                        a.index.to_string(),
                        "a system call has 6 arguments, 0 to 5",
                    )
                })?;
            let op = match a.op.as_str() {
                "SCMP_CMP_NE" => CmpOp::Ne,
                "SCMP_CMP_LT" => CmpOp::Lt,
                "SCMP_CMP_LE" => CmpOp::Le,
                "SCMP_CMP_EQ" => CmpOp::Eq,
                "SCMP_CMP_GE" => CmpOp::Ge,
                "SCMP_CMP_GT" => CmpOp::Gt,
                "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
                other => {
                    return Err(field(
                        format!("syscalls[{i}].args[{j}].op"),
                        other.to_string(),
                        "unknown operator (SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, _MASKED_EQ)",
                    ));
                }
            };
            args.push(ArgFilter {
                index,
                value: a.value,
                value_two: a.value_two,
                op,
            });
        }
        syscalls.push(Rule {
            names,
            action: act,
            args,
        });
    }
    Ok(Profile {
        default_action,
        architectures: raw.architectures.unwrap_or_default(),
        flags: raw.flags.unwrap_or_default(),
        syscalls,
    })
}

/// An OCI action name with its errnoRet.
fn action(name: &str, errno_ret: Option<u32>) -> Result<Action, String> {
    let with_errno = matches!(name, "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE");
    if errno_ret.is_some() && !with_errno {
        return Err(format!(
            "errnoRet {} is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
            errno_ret.unwrap_or_default()
        ));
    }
    let errno = errno_ret.unwrap_or(libc::EPERM as u32);
    if errno > MAX_ERRNO {
        return Err(format!(
            "errnoRet {errno} is above the largest errno, {MAX_ERRNO}"
        ));
    }
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno),
        "SCMP_ACT_TRACE" => Action::Trace(errno),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err("needs a seccomp agent (listenerPath): not supported".into());
        }
        _ => {
            return Err(
                "unknown action (SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, _TRAP, _TRACE, _LOG)"
                    .into(),
            );
        }
    })
}
