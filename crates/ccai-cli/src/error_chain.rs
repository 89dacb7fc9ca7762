//! [`Chain`]: an error and its sources on one line.

use std::error::Error;
use std::fmt;

/// Shows an error followed by each of its sources, joined by `: `.
///
/// The library's errors name what failed in their message and return the cause from `source()`
/// (a 503's store error, a callback's error): a line that showed only the message would lose it.
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
