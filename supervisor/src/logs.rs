//! logs: being written.
