//! Settings of [`HandlerOptions`](super::HandlerOptions) that do nothing in the handler's mode:
//! recorded when they are set, and named in one warning each when the handler is built, so that
//! a hook that never runs is not a silent surprise.

/// A setting that the handler's mode does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// `deduper` or `shared_deduper` in inbox mode.
    Deduper,
    /// `without_deduplication` in inbox mode.
    WithoutDeduplication,
    /// `on_duplicate` in inbox mode.
    OnDuplicate,
    /// `on_stored` outside inbox mode.
    #[cfg(feature = "inbox")]
    OnStored,
    /// `wake_on` outside inbox mode.
    #[cfg(feature = "inbox")]
    WakeOn,
}

impl Ignored {
    /// The setting, as the user wrote it.
    fn setting(self) -> &'static str {
        match self {
            Self::Deduper => "deduper",
            Self::WithoutDeduplication => "without_deduplication",
            Self::OnDuplicate => "on_duplicate",
            #[cfg(feature = "inbox")]
            Self::OnStored => "on_stored",
            #[cfg(feature = "inbox")]
            Self::WakeOn => "wake_on",
        }
    }

    /// Why it does nothing, and what does the job instead.
    fn why(self) -> &'static str {
        match self {
            Self::Deduper => {
                "in inbox mode the store deduplicates (durably, by event hash) and no deduper runs"
            }
            Self::WithoutDeduplication => {
                "in inbox mode the store always deduplicates: a repeat is answered 200 and counted, \
                 not stored again"
            }
            Self::OnDuplicate => {
                "in inbox mode the store tells duplicates: on_stored receives them as \
                 Inserted::Duplicate"
            }
            #[cfg(feature = "inbox")]
            Self::OnStored => {
                "outside inbox mode nothing is stored: the hook never runs (HandlerOptions::inbox \
                 stores deliveries)"
            }
            #[cfg(feature = "inbox")]
            Self::WakeOn => {
                "outside inbox mode nothing is stored: nothing wakes (HandlerOptions::inbox stores \
                 deliveries)"
            }
        }
    }
}

/// Records `setting` once (setting it twice is still one warning).
pub(crate) fn record(ignored: &mut Vec<Ignored>, setting: Ignored) {
    if !ignored.contains(&setting) {
        ignored.push(setting);
    }
}

/// One warning per ignored setting: called once, when the handler is built.
pub(crate) fn warn(ignored: &[Ignored]) {
    for setting in ignored {
        tracing::warn!(
            target: "ccai::webhook",
            setting = setting.setting(),
            "HandlerOptions::{} has no effect: {}",
            setting.setting(),
            setting.why()
        );
    }
}
