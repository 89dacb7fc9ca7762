//! One module per command.

pub(crate) mod completions;
pub(crate) mod events;
pub(crate) mod listen;
pub(crate) mod sign;
pub(crate) mod trigger;
pub(crate) mod ui;
pub(crate) mod verify;
pub(crate) mod webhooks;
