//! One module per command.

pub mod listen;
pub mod sign;
pub mod trigger;
pub mod verify;
pub mod webhooks;
