//! quantity: being written.
