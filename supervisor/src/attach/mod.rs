//! `supervisor attach`: a client's stdio joined to a running container's,
//! as `kubectl attach` does: the container's output as it comes (a tty's
//! as one stream), and with `stdin: true` in its manifest, the client's
//! input to its stdin; with `tty: true`, resizes of the client's terminal.
//!
//! The supervisor running the pod serves it ([`server`]) on a socket in
//! the pod's state dir, from its one event loop; `supervisor attach` is
//! the client ([`client`]); they speak [`protocol`]'s frames.

pub mod client;
pub mod protocol;
pub mod server;
