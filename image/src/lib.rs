//! Container images for the supervisor: references normalised as Docker
//! and kubelet do, a content-addressed store shared by every pod and every
//! supervisor on the host, layers unpacked once each (keyed by chain ID) in
//! overlayfs form, and loading `docker save` archives, OCI layouts and root
//! file systems into it. Mounting the layers and applying the image config
//! to a container are the supervisor's, not this crate's.

pub mod archive;
pub mod compression;
pub mod config;
pub mod digest;
pub mod import;
mod manifest;
pub mod pull;
pub mod reference;
pub mod store;
pub mod unpack;

#[cfg(test)]
mod testing;
