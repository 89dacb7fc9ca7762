//! Finding the one stored event a hash on the command line names: whole or its start, `#` first
//! or not, and the account's own where several accounts share the inbox (`--client-id`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail, Result};
use ccai::inbox::{EventDetail, ListFilter, ListRequest, Store, StoreError};

use super::format::escape_line;

/// The shortest prefix of a hash looked up by prefix (the lists show 12 characters).
const MIN_PREFIX: usize = 6;

/// Finds an event by its hash, or by the start of it as `ccai events list` and `ccai listen`
/// show it (when exactly one stored hash starts so), received for `client_id` when given. An
/// unknown or ambiguous hash is an error, and so is a hash more than one account holds when no
/// client id picks one: each account's event is its own.
pub(crate) async fn get_event(
    store: &dyn Store,
    hash: &str,
    client_id: Option<&str>,
) -> Result<EventDetail> {
    let (client, full) = find(store, hash, client_id).await?;
    // Gone since it was found (purged meanwhile): as unknown as if it never was.
    store
        .get_for(&client, &full)
        .await?
        .ok_or_else(|| unknown(hash, client_id))
}

/// The `(client id, full hash)` of the event `hash` names.
async fn find(store: &dyn Store, hash: &str, client_id: Option<&str>) -> Result<(String, String)> {
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
    if hash.chars().count() < MIN_PREFIX {
        if let Some(client) = client_id.filter(|_| !elsewhere.is_empty()) {
            bail!("{}", not_for(hash, client, &elsewhere));
        }
        // Not "unknown" alone: it may well start a stored hash, it is only too short to look up.
        bail!(
            "unknown event hash \"{}\": a hash's start must have at least {MIN_PREFIX} characters; `ccai events list` shows the stored ones",
            escape_line(hash)
        );
    }
    // No index serves a prefix: the newest pages first, stopping at a second hash. A miss reads
    // every event, which only a full hash avoids. Every account's events are read, so that a
    // miss for `client_id` can say which accounts the hash is stored for.
    let mut matches: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut after = None;
    loop {
        let request = ListRequest::new(ListFilter::new(), ListRequest::MAX_LIMIT).after(after);
        let page = store.list(request).await?;
        for event in page.events {
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
                bail!(
                    "event hash \"{}\" is ambiguous: more than one stored hash starts with it; give more of it",
                    escape_line(hash)
                );
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
            None => Err(unknown(hash, client_id)),
        },
        (None, Some(client)) if !elsewhere.is_empty() => {
            bail!("{}", not_for(hash, client, &elsewhere))
        }
        (None, _) => Err(unknown(hash, client_id)),
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
fn one_account(hash: &str, clients: BTreeSet<String>) -> Result<Option<String>> {
    if clients.len() > 1 {
        bail!(
            "event hash \"{}\" is stored for more than one account (client ids {}): pass --client-id with the one you mean",
            escape_line(hash),
            listed(&clients)
        );
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
