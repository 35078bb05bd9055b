//! Container images for the supervisor: references normalised as Docker
//! and kubelet do, a content-addressed store shared by every pod and every
//! supervisor on the host, layers unpacked once each (keyed by chain ID) in
//! overlayfs form, loading `docker save` archives, OCI layouts and root
//! file systems into it, and pulling from registries (auth files, hosts.toml
//! mirrors, progress). Mounting the layers and applying the image config
//! to a container are the supervisor's, not this crate's.

pub mod archive;
pub mod compression;
pub mod config;
pub mod digest;
pub mod fuzzing;
pub mod import;
mod manifest;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry_auth;
pub mod registry_hosts;
pub mod store;
pub mod unpack;

#[cfg(test)]
mod testing;
