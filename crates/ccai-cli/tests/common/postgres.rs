//! The PostgreSQL test database (`CCAI_TEST_POSTGRES_URL`; CI:
//! postgres://postgres@127.0.0.1:5432/test) and a schema of its own per test, dropped at the end
//! (`drop_schema.rs`).

use std::time::SystemTime;

/// The test database, or `None` (and a note) when `CCAI_TEST_POSTGRES_URL` is not set.
pub(crate) fn database() -> Option<String> {
    match std::env::var("CCAI_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            println!("skipped: CCAI_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// A schema of its own on the test database, dropped when this goes out of scope.
pub(crate) struct Schema {
    pub base: String,
    pub name: String,
}

impl Schema {
    pub(crate) fn new(base: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).expect("random bytes");
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            base: base.to_owned(),
            name: format!("ccai_t_{suffix}{:x}", nanos % 0xffff),
        }
    }

    /// The `--store` URL: the test database with `schema=` this schema.
    pub(crate) fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{separator}schema={}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Err(e) = super::drop_schema::drop_schema(&self.base, &self.name) {
            eprintln!("warning: cannot drop schema {}: {e}", self.name);
        }
    }
}
