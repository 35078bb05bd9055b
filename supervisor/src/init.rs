//! init: being written.
