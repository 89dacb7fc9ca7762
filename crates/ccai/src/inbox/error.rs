//! [`StoreError`]: why a [`Store`](super::Store) operation failed, and whether a retry may work.

/// Why a [`Store`](super::Store) operation failed.
///
/// Messages are one line and say what to do, in terms of the library ("open another store", not a
/// command-line flag: a program adds its own way to pick another). They never contain a body, a
/// signature or a secret.
/// [`is_transient`](Self::is_transient) tells whether the failure may go away by itself. The
/// handler's inbox mode answers every failed insert `503` with `Retry-After`, transient or not:
/// nothing was stored, so the sender must retry, and an operator may fix the rest (a corrupt or
/// locked file) before its retries run out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The bounded write queue is full: the store is receiving faster than it can commit.
    #[error(
        "the inbox store is overloaded (write queue full): retry later or raise the queue capacity"
    )]
    Overloaded,
    /// The store cannot be reached or written (disk full, I/O error, store closed), or an
    /// operation ran past its time limit (a PostgreSQL operation past its operation timeout).
    #[error("the inbox store is unavailable: {0}")]
    Unavailable(String),
    /// A read ran past its time limit and was stopped (a SQLite read past
    /// [`SqliteOptions::read_timeout`](crate::inbox::SqliteOptions::read_timeout); with the
    /// `postgres` feature, a PostgreSQL read stopped by the server a little before
    /// `PostgresOptions::operation_timeout`, where a database that does not answer at all is
    /// [`Unavailable`](Self::Unavailable)); the message
    /// says what to do: narrow the filter of a list or a search, or try a read that takes none
    /// again later, or, for a PostgreSQL read that waited for a lock another session holds, try
    /// again later and find that session. Transient, as [`Unavailable`](Self::Unavailable) is, but a program that
    /// repeats reads by itself (a page's live refresh) should not repeat the same filtered one:
    /// it would be stopped again, each time after the whole time limit.
    #[error("the inbox store stopped a read: {0}")]
    ReadStopped(String),
    /// The file was written by a newer version of ccai; it is left untouched.
    #[error("the store {path} was written by a newer ccai (schema {found}, this build knows {known}): upgrade ccai or open another store")]
    NewerSchema {
        /// The store's location.
        path: String,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },
    /// A table of the store lacks columns that its schema version has and ccai uses: the store
    /// was changed outside ccai (a column dropped by hand, an old or edited copy). It is left
    /// untouched.
    #[error(
        "the store {path} was changed outside ccai: its {table} table lacks the column{} {}: restore it from a backup or open another store",
        if .columns.len() == 1 { "" } else { "s" },
        .columns.join(", ")
    )]
    MissingColumns {
        /// The store's location.
        path: String,
        /// The table that lacks columns.
        table: String,
        /// The columns it lacks, in the schema's order.
        columns: Vec<String>,
    },
    /// A table of the store is gone altogether: the store was changed outside ccai (a table
    /// dropped or renamed by hand). It is left untouched.
    #[error("the store {path} was changed outside ccai: it has no {table} table: restore it from a backup or open another store")]
    MissingTable {
        /// The store's location.
        path: String,
        /// The table that is missing.
        table: String,
    },
    /// Another connection (usually another process) holds the store's write lock for longer than
    /// the busy timeout.
    #[error("the store {0} is locked by another process (another ccai using the same store?): stop it, wait, or open another store")]
    Locked(String),
    /// The file is not a valid store (not SQLite, damaged, or an unexpected schema).
    #[error("the store is corrupt or not an inbox store: {0}; restore it from a backup or open another store")]
    Corrupt(String),
    /// The caller asked for something the store refuses (e.g. a bulk operation with an empty
    /// filter).
    #[error("invalid request to the inbox store: {0}")]
    InvalidRequest(String),
    /// The store was opened read-only
    /// ([`SqliteOptions::read_only`](crate::inbox::SqliteOptions::read_only), or with the
    /// `postgres` feature `PostgresOptions::read_only`): it takes no write, nor the migration a
    /// schema older than this build's needs. Not transient: the same handle never will.
    #[error("the store {path} was opened read-only, so {refused}: {}", read_only_advice(.path))]
    ReadOnly {
        /// The store's location.
        path: String,
        /// What it refused ("it takes no writes", or the migration it would need).
        refused: String,
    },
    /// The PostgreSQL server refused a write that opening the store, or
    /// `PostgresStore::check_writable`, needs: the role lacks the privilege (SQLSTATE 42501,
    /// `insufficient_privilege`: a reporting role that may only `SELECT`, or one that lacks any
    /// of the privileges the store's writes need, which `check_writable`'s reason names), or the
    /// server or session takes no writes (25006, `read_only_sql_transaction`: a hot standby,
    /// `default_transaction_read_only`). The store may still be read with
    /// `PostgresOptions::read_only`. Transient, as [`Unavailable`](Self::Unavailable) was for it
    /// before: a grant, or the standby's promotion, ends it without a restart.
    #[error("the store {path} is read-only for this process ({reason}): connect as a role that may write its schema (the one its receivers use) to a server that takes writes, or open another store")]
    NotWritable {
        /// The store's location.
        path: String,
        /// The server's refusal and its SQLSTATE (and, from `check_writable`, what the role
        /// lacks).
        reason: String,
    },
}

/// What to do about a store opened read-only: a SQLite file is written by a user who may write
/// it and its folder, a PostgreSQL schema by a role that may write it.
fn read_only_advice(path: &str) -> &'static str {
    if path.starts_with("postgres://") {
        "open it writable, as a role that may write its schema, or open another store"
    } else {
        "open it writable, as a user who may write the file and its folder, or open another store"
    }
}

/// Why a running store stores nothing more once another process (a newer ccai) changed the
/// schema version from `known` to `found` under it: its writes would follow the old schema's
/// assumptions.
pub(crate) fn schema_changed(location: &str, found: i64, known: i64) -> StoreError {
    StoreError::Unavailable(if found > known {
        format!(
            "{location}: a newer ccai migrated the store to schema {found} while this one (schema \
             {known}) had it open, so this process stores nothing more; stop it and run the \
             newer ccai"
        )
    } else {
        format!(
            "{location}: the store's schema version changed to {found} while this ccai (schema \
             {known}) had it open, so this process stores nothing more; restart it to check the \
             store again"
        )
    })
}

impl StoreError {
    /// This error with `note` added to its message, its kind kept (so [`is_transient`] and what
    /// a program does about the kind stay as they were): for a failure that ends an operation
    /// which had already done part of its work, whose caller must hear how much. Added to the
    /// text a variant carries; the variants that carry none, or only names (the path, the table,
    /// the columns), are returned as they are, as no write part-way through an operation meets
    /// them (they come from opening a store, or from a write refused before it is queued).
    ///
    /// [`is_transient`]: Self::is_transient
    pub(crate) fn noted(self, note: &str) -> StoreError {
        match self {
            StoreError::Unavailable(why) => StoreError::Unavailable(format!("{why}; {note}")),
            StoreError::ReadStopped(why) => StoreError::ReadStopped(format!("{why}; {note}")),
            StoreError::Corrupt(why) => StoreError::Corrupt(format!("{why}; {note}")),
            StoreError::InvalidRequest(why) => StoreError::InvalidRequest(format!("{why}; {note}")),
            // The path is all it carries, and its message goes on after it.
            StoreError::Locked(path) => StoreError::Locked(format!("{path} ({note})")),
            StoreError::ReadOnly { path, refused } => StoreError::ReadOnly {
                path,
                refused: format!("{refused} ({note})"),
            },
            StoreError::NotWritable { path, reason } => StoreError::NotWritable {
                path,
                reason: format!("{reason}; {note}"),
            },
            other @ (StoreError::Overloaded
            | StoreError::NewerSchema { .. }
            | StoreError::MissingColumns { .. }
            | StoreError::MissingTable { .. }) => other,
        }
    }

    /// Whether the failure may go away by itself, so that the same operation may work if tried
    /// again later: overloaded, unavailable, locked, or not writable (PostgreSQL).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Overloaded
                | StoreError::Unavailable(_)
                | StoreError::ReadStopped(_)
                | StoreError::Locked(_)
                | StoreError::NotWritable { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A note joins the message and the kind stays: the same variant, as transient as before.
    #[test]
    fn a_noted_error_says_the_note_and_keeps_its_kind() {
        let path = || "/srv/inbox.db".to_owned();
        let errors = [
            StoreError::Overloaded,
            StoreError::Unavailable("/srv/inbox.db: the disk is full: free space".into()),
            StoreError::ReadStopped("/srv/inbox.db: the search ran too long".into()),
            StoreError::NewerSchema {
                path: path(),
                found: 9,
                known: 1,
            },
            StoreError::MissingColumns {
                path: path(),
                table: "events".into(),
                columns: vec!["body".into()],
            },
            StoreError::MissingTable {
                path: path(),
                table: "events".into(),
            },
            StoreError::Locked(path()),
            StoreError::Corrupt("/srv/inbox.db: database disk image is malformed".into()),
            StoreError::InvalidRequest("the write failed unexpectedly".into()),
            StoreError::ReadOnly {
                path: path(),
                refused: "it takes no writes".into(),
            },
            StoreError::NotWritable {
                path: path(),
                reason: "permission denied (SQLSTATE 42501)".into(),
            },
        ];
        for error in errors {
            let noted = error.clone().noted("500 were done before");
            assert_eq!(
                std::mem::discriminant(&noted),
                std::mem::discriminant(&error),
                "{error}"
            );
            assert_eq!(noted.is_transient(), error.is_transient(), "{error}");
            let carries_text = !matches!(
                error,
                StoreError::Overloaded
                    | StoreError::NewerSchema { .. }
                    | StoreError::MissingColumns { .. }
                    | StoreError::MissingTable { .. }
            );
            let text = noted.to_string();
            if carries_text {
                assert!(text.contains("500 were done before"), "{text}");
                // The message's own words are all still there, in order.
                let mut rest = text.as_str();
                for word in error.to_string().split(' ') {
                    // The note may come between a word and the punctuation after it.
                    let word = word.trim_end_matches([':', ';', ')']);
                    let at = rest.find(word).unwrap_or_else(|| panic!("{word}: {text}"));
                    rest = &rest[at + word.len()..];
                }
            } else {
                assert_eq!(noted, error);
            }
        }
    }
}
