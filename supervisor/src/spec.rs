//! spec: being written.
