//! The pod's status as Kubernetes shapes it, on disk and on screen.
//!
//! * [`api`]: the `v1` objects ([`PodRecord`], [`PodEvent`]) as the API server writes them.
//! * [`derivation`]: [`build`] derives the record from the restart state machine.
//! * [`store`]: [`StatusStore`] writes `status.json` and `events.json`; readers list them.
//! * [`render`]: the kubectl-like tables and the YAML of `supervisor status`.
//!
//! Time formatting is [`crate::time`]; the `status` subcommand's flags and
//! `main` are in the binary (`src/bin/supervisor/status.rs`).

pub mod api;
pub mod derivation;
#[cfg(test)]
mod fixtures;
pub mod render;
pub mod store;

pub use api::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, ObjectMeta, PodCondition, PodEvent, PodIp, PodRecord, PodStatus,
};
pub use derivation::{
    CONTAINER_STATUS_UNKNOWN, ContainerMeta, PodEnd, PodMeta, STOPPED, SUPERVISOR_GONE, build,
    is_final, supervisor_gone,
};
pub use render::{
    container_status_string, pod_status_string, render_events, render_table, to_yaml,
};
pub use store::{
    MAX_EVENTS, POD_DIR_MODE, StatusError, StatusStore, create_pod_dir, list_pod_ids, list_pods,
    read_events, read_record,
};
