//! `Catalog.Watch`: the event log from a revision on, then each change as it commits. The
//! stream reads the log a page (`limits.watch_page_bytes`) at a time, only when the client
//! has taken the page before (gRPC flow control polls it), so an idle watcher holds one page
//! at most, and everything it held goes when the client does. Gauges count them:
//! `tributary_cp_watchers` and `tributary_cp_watch_held_bytes` (the pages' bytes).

use crate::catalog::{Catalogue, Cursor, Feed};
use crate::error::CatalogError;
use futures::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use tokio::sync::watch;
use tonic::Status;
use tributary_proto::v1::WatchEvent;

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send>>;

/// Everything one watcher holds.
struct Watcher<F> {
    cat: Catalogue,
    feed: watch::Receiver<Feed>,
    /// Snapshot restores when the watch began: after another, the watcher must list again.
    restores: u64,
    next: Cursor,
    page: VecDeque<WatchEvent>,
    /// The encoded bytes of the events in `page`.
    held: usize,
    page_bytes: usize,
    /// What the client may see of an entity (secrets redacted or not).
    shown: F,
    ended: bool,
}

/// The events after `from`, then live. A compacted `from` fails here, before any stream.
pub fn watch<F>(
    cat: Catalogue,
    from: u64,
    page_bytes: usize,
    shown: F,
) -> Result<WatchStream, CatalogError>
where
    F: Fn(WatchEvent) -> WatchEvent + Send + Sync + 'static,
{
    let mut feed = cat.feed();
    let restores = feed.borrow_and_update().restores;
    let first = cat.events_page(Cursor::after(from), restores, page_bytes)?;
    metrics::gauge!("tributary_cp_watchers").increment(1.0);
    metrics::gauge!("tributary_cp_watch_held_bytes").increment(first.bytes as f64);
    let w = Watcher {
        cat,
        feed,
        restores,
        next: first.next,
        page: first.events.into(),
        held: first.bytes,
        page_bytes,
        shown,
        ended: false,
    };
    Ok(Box::pin(futures::stream::unfold(w, Watcher::step)))
}

impl<F> Drop for Watcher<F> {
    fn drop(&mut self) {
        metrics::gauge!("tributary_cp_watchers").decrement(1.0);
        metrics::gauge!("tributary_cp_watch_held_bytes").decrement(self.held as f64);
    }
}

impl<F: Fn(WatchEvent) -> WatchEvent> Watcher<F> {
    async fn step(mut self) -> Option<(Result<WatchEvent, Status>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(e) = self.page.pop_front() {
                let bytes = prost::Message::encoded_len(&e).min(self.held);
                self.held -= bytes;
                metrics::gauge!("tributary_cp_watch_held_bytes").decrement(bytes as f64);
                let e = (self.shown)(e);
                return Some((Ok(e), self));
            }
            // Seen before reading: a change committed after this read wakes the wait below.
            self.feed.borrow_and_update();
            match self
                .cat
                .events_page(self.next, self.restores, self.page_bytes)
            {
                Ok(page) if !page.events.is_empty() => {
                    metrics::gauge!("tributary_cp_watch_held_bytes").increment(page.bytes as f64);
                    self.held += page.bytes;
                    self.next = page.next;
                    self.page = page.events.into();
                }
                Ok(_) => {
                    if self.feed.changed().await.is_err() {
                        // The catalogue is gone: the member is stopping.
                        return None;
                    }
                }
                Err(e) => {
                    self.ended = true;
                    return Some((Err(e.into()), self));
                }
            }
        }
    }
}
