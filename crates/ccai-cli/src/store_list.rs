//! Reading a store's list across pages, for `ccai events list` and the view's chart.

use ccai::inbox::{EventSummary, ListFilter, ListRequest, Store, StoreError};

/// Up to `limit` events matching `filter`, newest first, read a page at a time; and whether more
/// matched than `limit`.
pub(crate) async fn newest(
    store: &dyn Store,
    filter: ListFilter,
    limit: usize,
) -> Result<(Vec<EventSummary>, bool), StoreError> {
    let mut events = Vec::new();
    let mut after = None;
    while events.len() < limit {
        let want = (limit - events.len()).min(ListRequest::MAX_LIMIT);
        let page = store
            .list(ListRequest::new(filter.clone(), want).after(after))
            .await?;
        events.extend(page.events);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok((events, false)),
        }
    }
    let more = events.len() > limit || after.is_some();
    events.truncate(limit);
    Ok((events, more))
}
