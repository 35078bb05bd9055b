use super::*;

fn oci(json: &str) -> Result<Profile, SeccompError> {
    Profile::from_oci_json(json.as_bytes(), "/seccomp/p.json")
}

fn error(json: &str) -> String {
    oci(json).unwrap_err().to_string()
}

#[test]
fn an_oci_profile_parses_into_our_form() {
    let p = oci(r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "archMap": [{"ignored": true}],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_KILL", "args": [
                {"index": 0, "value": 2080505856, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    }"#)
    .unwrap();
    assert_eq!(p.default_action, Action::Allow);
    assert_eq!(p.syscalls[0].action, Action::Errno(libc::EPERM as u32));
    assert_eq!(p.syscalls[1].action, Action::Errno(13));
    assert_eq!(p.syscalls[2].action, Action::KillThread);
    assert_eq!(p.syscalls[2].args[0].op, CmpOp::MaskedEq);
    let program = p.compile("p").unwrap();
    // Default allow: no first filter; one per other action.
    assert_eq!(program.filter_count(), 3);
    assert_eq!(program.flags, 2);
}

#[test]
fn profile_errors_name_the_file_the_field_and_the_value() {
    let e = error(r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#);
    assert!(
        e.contains("/seccomp/p.json")
            && e.contains("defaultAction")
            && e.contains("SCMP_ACT_MAYBE"),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(
        e.contains("syscalls[0].args[0].index") && e.contains("\"7\""),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#,
    );
    assert!(
        e.contains("syscalls[0].args[0].op") && e.contains("SCMP_CMP_ABOUT"),
        "{e}"
    );
    let e = error(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    assert!(e.contains("syscalls[0].names"), "{e}");
    let e = error(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]}"#,
    );
    assert!(
        e.contains("syscalls[0].action") && e.contains("errnoRet"),
        "{e}"
    );
    let e = error(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#);
    assert!(e.contains("4095"), "{e}");
    let e = error(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
    assert!(e.contains("not supported"), "{e}");
    // Type errors: the path and the position.
    let e = error(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": "zero", "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(
        e.contains("syscalls[0].args[0].index") && e.contains("line 1"),
        "{e}"
    );
    let e = error("{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n");
    assert!(e.contains("line 2") || e.contains("EOF"), "{e}");
    let e = error(r#"{"syscalls": []}"#);
    assert!(e.contains("defaultAction"), "{e}");
}

#[test]
fn unknown_architectures_and_flags_are_refused_other_ones_noted() {
    let p =
        oci(r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}"#).unwrap();
    let e = p.compile("p").unwrap_err().to_string();
    assert!(
        e.contains("architectures[0]") && e.contains("SCMP_ARCH_Z80"),
        "{e}"
    );
    let p = oci(r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}"#)
        .unwrap();
    let e = p.compile("p").unwrap_err().to_string();
    assert!(
        e.contains("flags[0]") && e.contains("SECCOMP_FILTER_FLAG_FAST"),
        "{e}"
    );
    let other = if std::env::consts::ARCH == "x86_64" {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    };
    let p = oci(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["{other}", "SCMP_ARCH_X32"]}}"#
    ))
    .unwrap();
    let program = p.compile("p").unwrap();
    assert!(program.other_architectures.contains(&other.to_string()));
}

#[test]
fn unknown_syscall_names_are_ignored_and_listed() {
    let p = oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "no_such_call", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#).unwrap();
    let program = p.compile("p").unwrap();
    assert_eq!(&*program.unknown_names, ["no_such_call"]);
    assert_eq!(program.filter_count(), 1);
}

fn allowed(profile: &Profile, name: &str) -> bool {
    profile.syscalls.iter().any(|r| {
        r.action == Action::Allow && r.args.is_empty() && r.names.iter().any(|n| n == name)
    })
}

#[test]
fn capability_gates_follow_the_final_capability_set() {
    let default = default::runtime_default(CapSet::RUNTIME_DEFAULT, "x86_64");
    for name in [
        "unshare",
        "setns",
        "mount",
        "bpf",
        "keyctl",
        "add_key",
        "reboot",
        "open_by_handle_at",
        "kexec_load",
    ] {
        assert!(!allowed(&default, name), "{name} allowed by default");
    }
    assert!(
        allowed(&default, "ptrace"),
        "containerd allows ptrace on 4.8+"
    );
    assert!(
        allowed(&default, "chroot"),
        "CAP_SYS_CHROOT is in the default set"
    );
    assert!(allowed(&default, "arch_prctl"));
    // Without CAP_SYS_ADMIN: clone only without namespace flags, clone3 ENOSYS.
    let clone = default
        .syscalls
        .iter()
        .find(|r| r.names == ["clone"])
        .unwrap();
    assert_eq!(clone.args[0].op, CmpOp::MaskedEq);
    assert_eq!(
        clone.args[0].value & libc::CLONE_NEWUSER as u64,
        libc::CLONE_NEWUSER as u64
    );
    let clone3 = default
        .syscalls
        .iter()
        .find(|r| r.names == ["clone3"])
        .unwrap();
    assert_eq!(clone3.action, Action::Errno(libc::ENOSYS as u32));

    let admin = CapSet::adjust(
        CapSet::RUNTIME_DEFAULT,
        &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"],
        &["CAP_SYS_CHROOT"],
    )
    .unwrap();
    let p = default::runtime_default(admin, "x86_64");
    for name in [
        "unshare",
        "setns",
        "mount",
        "clone",
        "clone3",
        "kcmp",
        "process_vm_readv",
    ] {
        assert!(allowed(&p, name), "{name} with CAP_SYS_ADMIN/PTRACE");
    }
    assert!(!allowed(&p, "chroot"), "CAP_SYS_CHROOT dropped");
    assert!(
        !p.syscalls
            .iter()
            .any(|r| r.names == ["clone3"] && r.action != Action::Allow)
    );
}

#[test]
fn architecture_entries_and_argument_filters() {
    let x86 = default::runtime_default(CapSet::RUNTIME_DEFAULT, "x86_64");
    let arm = default::runtime_default(CapSet::RUNTIME_DEFAULT, "aarch64");
    assert!(allowed(&x86, "modify_ldt") && !allowed(&arm, "modify_ldt"));
    assert!(allowed(&arm, "set_tls") && !allowed(&x86, "set_tls"));
    let s390 = default::runtime_default(CapSet::RUNTIME_DEFAULT, "s390x");
    let clone = s390.syscalls.iter().find(|r| r.names == ["clone"]).unwrap();
    assert_eq!(
        clone.args[0].index, 1,
        "s390 clone flags are the second argument"
    );
    let personalities: Vec<u64> = x86
        .syscalls
        .iter()
        .filter(|r| r.names == ["personality"])
        .map(|r| r.args[0].value)
        .collect();
    assert_eq!(personalities, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    let socket = x86.syscalls.iter().find(|r| r.names == ["socket"]).unwrap();
    assert_eq!(
        (socket.args[0].op, socket.args[0].value),
        (CmpOp::Ne, libc::AF_VSOCK as u64)
    );
}

#[test]
fn the_default_profile_compiles_to_two_filters() {
    let program = runtime_default(CapSet::RUNTIME_DEFAULT)
        .compile("RuntimeDefault")
        .unwrap();
    // The allow-list with EPERM, then clone3's ENOSYS.
    assert_eq!(program.filter_count(), 2);
    // About 350 names in 178 instructions: runs of allowed numbers are
    // one leaf of the tree each (seccompiler's chain: 1,512).
    let len = program.filters[0].len();
    assert!((100..400).contains(&len), "{len}");
    // Names of other architectures only.
    assert!(
        program.unknown_names.iter().all(|n| n.ends_with("32")
            || n.starts_with('_')
            || n.contains("time64")
            || n.len() > 2),
        "{:?}",
        program.unknown_names
    );
    assert!(
        !program
            .unknown_names
            .iter()
            .any(|n| n == "mkdir" || n == "socket")
    );
}

#[test]
fn several_conditions_on_one_argument_are_ored_as_runc_does() {
    let rule = Rule {
        names: vec!["personality".into()],
        action: Action::Allow,
        args: vec![
            ArgFilter {
                index: 0,
                value: 0,
                value_two: 0,
                op: CmpOp::Eq,
            },
            ArgFilter {
                index: 0,
                value: 8,
                value_two: 0,
                op: CmpOp::Eq,
            },
        ],
    };
    assert_eq!(condition_lists(&rule).unwrap().len(), 2);
    let rule = Rule {
        args: vec![
            ArgFilter {
                index: 0,
                value: 0,
                value_two: 0,
                op: CmpOp::Eq,
            },
            ArgFilter {
                index: 1,
                value: 8,
                value_two: 0,
                op: CmpOp::Eq,
            },
        ],
        ..rule
    };
    assert_eq!(condition_lists(&rule).unwrap().len(), 1);
}

#[test]
fn a_saved_program_installs_the_same_filters() {
    let program = runtime_default(CapSet::RUNTIME_DEFAULT)
        .compile("RuntimeDefault")
        .unwrap();
    let saved = program.to_saved();
    let json = serde_json::to_string(&saved).unwrap();
    let back: SavedProgram = serde_json::from_str(&json).unwrap();
    let restored = Program::from_saved(&back).unwrap();
    assert_eq!(restored.filter_count(), program.filter_count());
    assert!(saved.filters.iter().all(|f| !f.is_empty()));
    assert_eq!(restored.to_saved(), saved);

    let empty = SavedProgram {
        flags: 0,
        filters: vec![vec![]],
    };
    let e = Program::from_saved(&empty).unwrap_err().to_string();
    assert!(e.contains("filter 0 has 0 instructions"), "{e}");
    let flags = SavedProgram {
        flags: 0x100,
        filters: saved.filters.clone(),
    };
    let e = Program::from_saved(&flags).unwrap_err().to_string();
    assert!(e.contains("flags 0x100"), "{e}");
}

#[test]
fn whether_poll_is_allowed_whatever_its_arguments_is_known() {
    let default = runtime_default(CapSet::RUNTIME_DEFAULT)
        .compile("RuntimeDefault")
        .unwrap();
    assert!(default.allows_poll, "containerd's default allows poll");
    let allow_all = oci(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
    assert!(allow_all.compile("p").unwrap().allows_poll);
    let without = oci(r#"{"defaultAction": "SCMP_ACT_KILL", "syscalls": [
        {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#)
    .unwrap();
    assert!(!without.compile("p").unwrap().allows_poll);
    let refused = oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["poll"], "action": "SCMP_ACT_ERRNO"}]}"#)
    .unwrap();
    assert!(!refused.compile("p").unwrap().allows_poll);
    let conditional = oci(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["poll"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#)
    .unwrap();
    assert!(!conditional.compile("p").unwrap().allows_poll);
}

/// seccompiler's own filter: the numbers compared one after the other.
fn chain(
    rules: BTreeMap<u32, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    on_match: SeccompAction,
    arch: TargetArch,
) -> Result<Vec<seccompiler::sock_filter>, seccompiler::BackendError> {
    let rules = rules
        .into_iter()
        .map(|(nr, r)| (i64::from(nr), r))
        .collect();
    seccompiler::BpfProgram::try_from(seccompiler::SeccompFilter::new(
        rules, mismatch, on_match, arch,
    )?)
}

/// What `program` answers for `struct seccomp_data` {nr, arch, args}, and
/// in how many steps: the classic BPF seccompiler and the tree use.
fn run(program: &[seccompiler::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
    let word = |k: u32| match k {
        0 => nr,
        4 => arch,
        16..=63 if k.is_multiple_of(4) => {
            let arg = args[(k as usize - 16) / 8];
            if k.is_multiple_of(8) {
                arg as u32
            } else {
                (arg >> 32) as u32
            }
        }
        _ => panic!("load of seccomp_data offset {k}"),
    };
    let (mut a, mut pc) = (0u32, 0usize);
    for steps in 1.. {
        let i = &program[pc];
        let k = i.k;
        let cond = |taken: bool| {
            if taken {
                usize::from(i.jt)
            } else {
                usize::from(i.jf)
            }
        };
        pc += 1 + match i.code {
            0x20 => {
                a = word(k);
                0
            }
            0x54 => {
                a &= k;
                0
            }
            0x05 => k as usize,
            0x15 => cond(a == k),
            0x25 => cond(a > k),
            0x35 => cond(a >= k),
            0x45 => cond(a & k != 0),
            0x06 => return (k, steps),
            code => panic!("instruction {code:#x} at {pc}"),
        };
    }
    unreachable!()
}

#[test]
fn the_tree_answers_every_call_as_seccompilers_chain_does_in_few_steps() {
    let mixed = oci(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["read", "write", "close", "exit_group", "openat"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        {"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 2, "value": 4, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0},
            {"index": 1, "value": 4096, "op": "SCMP_CMP_GE"}]},
        {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS", "args": [
            {"index": 1, "value": 9, "op": "SCMP_CMP_LT"}]},
        {"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}]}"#,
    )
    .unwrap();
    let profiles = [
        ("RuntimeDefault", runtime_default(CapSet::RUNTIME_DEFAULT)),
        (
            "RuntimeDefault, all capabilities",
            runtime_default(CapSet::ALL),
        ),
        ("mixed", mixed),
    ];
    let native = seccompiler::BpfProgram::try_from(
        seccompiler::SeccompFilter::new(
            BTreeMap::new(),
            SeccompAction::Allow,
            SeccompAction::KillThread,
            TargetArch::try_from(std::env::consts::ARCH).unwrap(),
        )
        .unwrap(),
    )
    .unwrap()[1]
        .k;
    let numbers =
        (0..700)
            .chain(0x4000_0000..0x4000_0200)
            .chain([0x7fff_ffff, 0xffff_fffe, u32::MAX]);
    let arguments = [
        [0; 6],
        [u64::MAX; 6],
        [8, 4096, 4, 0, 0, 0],
        [0xffff_ffff, 4095, 0, 40, 0, 0],
        [40, 8, 3, 9, 1 << 32, 0x1_0000_0008],
        [0x1000_0000, 0x7e02_0000, 0x20000, 0, 0, 0],
    ];
    for (name, profile) in profiles {
        let tree = profile.compile(name).unwrap();
        let chained = profile.compile_with(name, chain).unwrap();
        assert_eq!(tree.filter_count(), chained.filter_count(), "{name}");
        for (t, c) in tree.filters.iter().zip(chained.filters.iter()) {
            let mut most_steps = 0;
            for nr in numbers.clone() {
                for arch in [native, 0x4000_0003] {
                    for args in arguments {
                        let (answer, steps) = run(t, nr, arch, args);
                        assert_eq!(
                            answer,
                            run(c, nr, arch, args).0,
                            "{name}: nr {nr} arch {arch:#x} args {args:?}"
                        );
                        most_steps = most_steps.max(steps);
                    }
                }
            }
            // The longest rule chain (clone's, personality's) and the
            // path to it; containerd's allow-list alone is about 300.
            assert!(most_steps <= 48, "{name}: {most_steps} steps");
        }
    }
}
