//! Empty: the tests (`tests/`) are the point of this crate. See `Cargo.toml`.
