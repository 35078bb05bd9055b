//! manifest: being written.
