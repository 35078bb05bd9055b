//! The pod supervisor: runs one Kubernetes pod on a bare host, or wraps one
//! program as a tini-grade PID 1 (`init`).
//!
//! Data flows manifest -> spec -> sandbox -> containers -> status:
//! [`manifest`] reads the YAML as Kubernetes writes it, [`spec`] validates it
//! into what runs (every error names file, document, field and value),
//! [`quantity`] parses resource quantities as Kubernetes does, [`restart`]
//! decides restarts and back-off, [`status`] shapes the pod's status, [`logs`]
//! stores container output ([`paths`] says where both live), and [`init`] is the PID 1 of `supervisor init`.

pub mod atomic_file;
pub mod cni;
pub mod event_loop;
pub mod host;
pub mod init;
pub mod logs;
pub mod manifest;
pub mod memory;
pub mod network;
pub mod notify;
pub mod paths;
pub mod pid1;
pub mod probe;
pub mod quantity;
pub mod restart;
pub mod run;
pub mod spec;
pub mod status;
pub mod supervised;
mod sys;
pub mod time;
pub mod trace;
pub mod volumes;
