//! Finding the one stored event a hash on the command line names: whole or its start, `#` first
//! or not, and the account's own where several accounts share the inbox (`--client-id`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Result};
use ccai::inbox::{EventDetail, ListFilter, ListRequest, Store, StoreError};

use super::format::escape_line;

/// The shortest prefix of a hash looked up by prefix (the lists show 12 characters).
const MIN_PREFIX: usize = 6;

/// The events a prefix search reads per page: a second hash is found in the first page unless
/// one hash is stored for this many accounts.
const PREFIX_PAGE: usize = 8;

/// Why a hash names no one stored event ([`find`]). Each front end words it: the CLI with its
/// flags, the view's API with its query parameters and an HTTP status.
#[derive(Debug)]
pub(crate) enum NotFound {
    /// The store could not be read.
    Store(StoreError),
    /// No stored hash is `hash` or starts with it (for the client id given, if any).
    Unknown { hash: String },
    /// `hash` is no stored hash and too short to be looked up by its start.
    TooShort { hash: String },
    /// More than one stored hash starts with `hash`.
    Ambiguous { hash: String },
    /// `hash` is stored for several accounts, and no client id picks one.
    SeveralAccounts {
        hash: String,
        client_ids: BTreeSet<String>,
    },
    /// `hash` is not stored for the client id given, but for these accounts.
    NotFor {
        hash: String,
        client_ids: BTreeSet<String>,
    },
}

impl From<StoreError> for NotFound {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Finds an event by its hash, or by the start of it as `ccai events list` and `ccai listen`
/// show it (when exactly one stored hash starts so), received for `client_id` when given. An
/// unknown or ambiguous hash is an error, and so is a hash more than one account holds when no
/// client id picks one: each account's event is its own.
pub(crate) async fn get_event(
    store: &dyn Store,
    hash: &str,
    client_id: Option<&str>,
) -> Result<EventDetail> {
    let (client, full) = find(store, hash, client_id)
        .await
        .map_err(|e| cli_error(e, client_id))?;
    // Gone since it was found (purged meanwhile): as unknown as if it never was.
    store
        .get_for(&client, &full)
        .await?
        .ok_or_else(|| unknown(hash, client_id))
}

/// The CLI's words for `e`, looking up for `client_id`.
fn cli_error(e: NotFound, client_id: Option<&str>) -> anyhow::Error {
    match e {
        NotFound::Store(e) => e.into(),
        NotFound::Unknown { hash } => unknown(&hash, client_id),
        // Not "unknown" alone: it may well start a stored hash, it is only too short to look up.
        NotFound::TooShort { hash } => anyhow!(
            "unknown event hash \"{}\": a hash's start must have at least {MIN_PREFIX} characters; `ccai events list` shows the stored ones",
            escape_line(&hash)
        ),
        NotFound::Ambiguous { hash } => anyhow!(
            "event hash \"{}\" is ambiguous: more than one stored hash starts with it; give more of it",
            escape_line(&hash)
        ),
        NotFound::SeveralAccounts { hash, client_ids } => anyhow!(
            "event hash \"{}\" is stored for more than one account (client ids {}): pass --client-id with the one you mean",
            escape_line(&hash),
            listed(&client_ids)
        ),
        NotFound::NotFor { hash, client_ids } => {
            anyhow!("{}", not_for(&hash, client_id.unwrap_or(""), &client_ids))
        }
    }
}

/// The `(client id, full hash)` of the event `hash` names: the whole hash, `#` first or not (as
/// `ccai listen` shows it), or the start of exactly one stored hash. The CLI and the view's API
/// both look events up through it.
pub(crate) async fn find(
    store: &dyn Store,
    hash: &str,
    client_id: Option<&str>,
) -> Result<(String, String), NotFound> {
    // `ccai listen` shows a hash as `#d411242ff778`: pasted so, the `#` is not part of it.
    let stripped = hash.strip_prefix('#').filter(|rest| !rest.is_empty());
    // The other accounts that hold what was asked for: the error names them when `client_id`
    // holds nothing, as the likelier mistake is the account, not the hash.
    let mut elsewhere = BTreeSet::new();
    for exact in std::iter::once(hash).chain(stripped) {
        let mut holders = holders(store, exact).await?;
        match client_id {
            Some(client) if holders.contains(client) => {
                return Ok((client.to_owned(), exact.to_owned()))
            }
            Some(_) => elsewhere.append(&mut holders),
            None => {
                if let Some(client) = one_account(exact, holders)? {
                    return Ok((client, exact.to_owned()));
                }
            }
        }
    }
    let hash = stripped.unwrap_or(hash);
    let not_for = |client_ids| NotFound::NotFor {
        hash: hash.to_owned(),
        client_ids,
    };
    if hash.chars().count() < MIN_PREFIX {
        if client_id.is_some() && !elsewhere.is_empty() {
            return Err(not_for(elsewhere));
        }
        return Err(NotFound::TooShort {
            hash: hash.to_owned(),
        });
    }
    // Only the events the prefix matches, every account's, so that a miss for `client_id` can
    // say which accounts the hash is stored for. One page of a few settles nearly every lookup
    // (none, one hash, or a second one); more pages only when one hash is stored for more
    // accounts than a page holds.
    let mut matches: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut after = None;
    loop {
        let request =
            ListRequest::new(ListFilter::new().hash_prefix(hash), PREFIX_PAGE).after(after);
        let page = store.list(request).await?;
        for event in page.events {
            // Checked again: a `Store` of another crate may not know the filter.
            if !event.event_hash.starts_with(hash) {
                continue;
            }
            if client_id.is_some_and(|client| client != event.client_id) {
                elsewhere.insert(event.client_id);
                continue;
            }
            matches
                .entry(event.event_hash)
                .or_default()
                .insert(event.client_id);
            if matches.len() > 1 {
                return Err(NotFound::Ambiguous {
                    hash: hash.to_owned(),
                });
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    match (matches.pop_first(), client_id) {
        (Some((full, clients)), _) => match one_account(&full, clients)? {
            Some(client) => Ok((client, full)),
            None => Err(NotFound::Unknown {
                hash: hash.to_owned(),
            }),
        },
        (None, Some(_)) if !elsewhere.is_empty() => Err(not_for(elsewhere)),
        (None, _) => Err(NotFound::Unknown {
            hash: hash.to_owned(),
        }),
    }
}

/// The client ids of the accounts holding an event stored under exactly `hash` (the view's API
/// looks a hash up with it too).
pub(crate) async fn holders(store: &dyn Store, hash: &str) -> Result<BTreeSet<String>, StoreError> {
    let mut clients = BTreeSet::new();
    let mut after = None;
    loop {
        let filter = ListFilter::new().event_hash(hash);
        let page = store
            .list(ListRequest::new(filter, ListRequest::MAX_LIMIT).after(after))
            .await?;
        clients.extend(page.events.into_iter().map(|e| e.client_id));
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(clients),
        }
    }
}

/// The one account holding `hash`, if one does; an error if several do: which one is meant is
/// the user's to say, not the newest's.
fn one_account(hash: &str, clients: BTreeSet<String>) -> Result<Option<String>, NotFound> {
    if clients.len() > 1 {
        return Err(NotFound::SeveralAccounts {
            hash: hash.to_owned(),
            client_ids: clients,
        });
    }
    Ok(clients.into_iter().next())
}

/// A hash the account `client` does not hold, while `others` do.
fn not_for(hash: &str, client: &str, others: &BTreeSet<String>) -> String {
    let held = match others.first().filter(|_| others.len() == 1) {
        Some(only) => format!(
            "it is stored for client id {0} only: pass --client-id {0} for that account's",
            escape_line(only)
        ),
        None => format!(
            "it is stored for client ids {}: pass --client-id with the one you mean",
            listed(others)
        ),
    };
    format!(
        "no event hash \"{}\" for client id {}: {held}",
        escape_line(hash),
        escape_line(client)
    )
}

fn unknown(hash: &str, client_id: Option<&str>) -> anyhow::Error {
    match client_id {
        Some(client) => anyhow!(
            // Escaped once: `{:?}` would escape the escapes again.
            "unknown event hash \"{}\" for client id {}: `ccai events list --client-id {}` shows that account's events",
            escape_line(hash),
            escape_line(client),
            escape_line(client)
        ),
        None => anyhow!(
            "unknown event hash \"{}\": `ccai events list` shows the stored ones",
            escape_line(hash)
        ),
    }
}

/// `1231, 4567`: client ids as a line may show them.
fn listed(clients: &BTreeSet<String>) -> String {
    clients
        .iter()
        .map(|c| escape_line(c))
        .collect::<Vec<_>>()
        .join(", ")
}
