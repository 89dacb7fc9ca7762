//! Spellings of a secret's characters that the redactors follow: the management API client's
//! (`api::scrub`, which withholds an error body that still spells a secret) and the forwarding
//! dispatcher's (`inbox::dispatch::excerpt`, which replaces each echo in a stored excerpt). A
//! spelling read here is followed by both.

pub(crate) mod html;
mod html_names;
