//! Helpers for fjord end-to-end tests.
