//! [`Chain`]: an error and its sources on one line, for a log.

use std::error::Error;
use std::fmt;

/// Shows an error followed by each of its sources, joined by `: `.
///
/// The crate's errors name what failed in their message and return the cause from `source()`
/// (never both, so a reporter that walks the chain shows each cause once); a log line that shows
/// only the message would lose the cause.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}
