//! restart: being written.
