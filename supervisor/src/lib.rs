//! The pod supervisor: runs one Kubernetes pod on a bare host, or wraps one
//! program as a tini-grade PID 1 (`init`). The command line is in
//! `src/bin/supervisor/` (one file per subcommand); this library holds no
//! flag parsing.
//!
//! Data flows manifest -> spec -> sandbox -> containers -> status:
//! [`manifest`] reads the YAML as Kubernetes writes it, [`spec`] validates it
//! into what runs (every error names file, document, field and value;
//! [`quantity`] parses resource quantities as Kubernetes does); [`run`] is
//! the pod's event loop and its sandbox (pause, [`network`] over [`cni`],
//! volumes), [`host`] finds what the host gives it (pause, the cgroup
//! parent); [`supervised`] owns one container across its instances (start,
//! park, exit, stop with the grace period); [`restart`] decides restarts,
//! back-off and the start order as a pure state machine, [`job`] decides a
//! Job's pods (back-off limit, deadline) the same way, [`probe`] runs
//! probes, [`notify`] speaks sd_notify; [`status`] shapes, stores and renders
//! the pod's status and [`logs`] its containers' output ([`paths`] says
//! where both live, [`time`] formats their times); [`init`] and [`pid1`]
//! are the PID 1 of `supervisor init`. [`pod_lock`] keeps one supervisor
//! per pod, [`reclaim`] cleans up after a dead one. [`exec`] runs a command
//! in a running container of a pod another process supervises (with
//! [`terminal`] for `-t`). The only `unsafe` is in `sys`.

pub mod atomic_file;
pub mod attach;
pub mod cni;
pub mod confinement;
pub mod event_loop;
pub mod eviction;
pub mod exec;
pub mod fuzzing;
pub mod hook;
pub mod host;
pub mod images;
pub mod init;
pub mod job;
pub mod logs;
pub mod manifest;
pub mod memory;
pub mod network;
pub mod notify;
pub mod paths;
pub mod pid1;
pub mod pod_lock;
pub mod probe;
pub mod quantity;
pub mod reclaim;
pub mod restart;
pub mod run;
pub mod spec;
pub mod status;
pub mod supervised;
mod sys;
pub mod terminal;
pub mod time;
pub mod trace;
pub mod volumes;
