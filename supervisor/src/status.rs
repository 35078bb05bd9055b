//! status: being written.
