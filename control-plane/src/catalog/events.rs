//! The catalogue's event log, which `Watch` serves: one RocksDB key per event (`revision`,
//! index within the revision), trimmed to a number of revisions and of bytes. Watchers page
//! through it, a bounded number of bytes at a time, woken by the revision feed; nothing is
//! held per watcher but its position and one page.

use super::{cf, Catalogue, CF_CATALOG_META, CF_EVENTS, KEY_EVENT_FLOOR};
use crate::error::CatalogError;
use prost::Message;
use rocksdb::{WriteBatch, DB};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::watch;
use tributary_common::sync::lock;
use tributary_proto::v1::WatchEvent;

/// What watchers wait on: the newest committed revision, and how many times a snapshot
/// replaced the catalogue (a watcher from before a replacement must list again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Feed {
    pub revision: u64,
    pub restores: u64,
}

/// A watcher's place in the log: the key of the next event it has not been sent. Every
/// event before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    revision: u64,
    index: u32,
}

impl Cursor {
    /// Just after every event of `revision` (`Watch(from_revision)`).
    pub fn after(revision: u64) -> Self {
        Self {
            revision: revision.saturating_add(1),
            index: 0,
        }
    }
}

/// One page of events, their encoded bytes, and where the next page starts.
pub struct Page {
    pub events: Vec<WatchEvent>,
    pub bytes: usize,
    pub next: Cursor,
}

pub(super) struct EventLog {
    /// Every revision in the log, oldest first, with its events' encoded bytes.
    sizes: Mutex<Sizes>,
    /// Revisions up to this one were trimmed.
    floor: AtomicU64,
    restores: AtomicU64,
    max_revisions: u64,
    max_bytes: AtomicU64,
    feed: watch::Sender<Feed>,
    /// When revisions were committed here, oldest first (what was stored before this process
    /// started counts as committed at its start): background cleanup trims by age.
    times: Mutex<VecDeque<(u64, Instant)>>,
}

#[derive(Default)]
struct Sizes {
    revisions: VecDeque<(u64, u64)>,
    bytes: u64,
}

impl Sizes {
    /// Reads the revisions and sizes of the stored log (once, at open).
    fn scan(db: &DB) -> Result<Self, CatalogError> {
        let mut sizes = Sizes::default();
        let mut it = db.raw_iterator_cf(cf(db, CF_EVENTS)?);
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let revision = decode_key(k)?.0;
            sizes.add(revision, v.len() as u64);
            it.next();
        }
        it.status()?;
        Ok(sizes)
    }

    fn add(&mut self, revision: u64, bytes: u64) {
        match self.revisions.back_mut() {
            Some((r, b)) if *r == revision => *b += bytes,
            _ => self.revisions.push_back((revision, bytes)),
        }
        self.bytes += bytes;
    }
}

impl EventLog {
    pub(super) fn open(
        db: &DB,
        floor: u64,
        revision: u64,
        max_revisions: u64,
    ) -> Result<Self, CatalogError> {
        Ok(Self {
            sizes: Mutex::new(Sizes::scan(db)?),
            floor: AtomicU64::new(floor),
            restores: AtomicU64::new(0),
            max_revisions: max_revisions.max(1),
            max_bytes: AtomicU64::new(u64::MAX),
            feed: watch::channel(Feed {
                revision,
                restores: 0,
            })
            .0,
            times: Mutex::new(VecDeque::from([(revision, Instant::now())])),
        })
    }

    pub(super) fn set_max_bytes(&self, max: u64) {
        self.max_bytes.store(max.max(1), Ordering::Release);
    }

    pub(super) fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Tells watchers that `revision` is committed.
    pub(super) fn committed(&self, revision: u64) {
        {
            let mut times = lock(&self.times);
            if times.back().is_none_or(|(r, _)| *r < revision) {
                times.push_back((revision, Instant::now()));
            }
            // The log never holds more revisions than that (`put_events`).
            while times.len() as u64 > self.max_revisions + 1 {
                times.pop_front();
            }
        }
        self.feed.send_if_modified(|f| {
            let changed = f.revision != revision;
            f.revision = revision;
            changed
        });
    }

    /// A snapshot replaced the catalogue at `revision`: the log restarts empty there. Runs
    /// before the batch that empties it is written, so a reader that sees the empty log
    /// sees the new restore count too.
    pub(super) fn restarting(&self, revision: u64) {
        *lock(&self.sizes) = Sizes::default();
        *lock(&self.times) = VecDeque::from([(revision, Instant::now())]);
        self.floor.store(revision, Ordering::Release);
        self.restores.fetch_add(1, Ordering::AcqRel);
    }

    /// After the restoring batch is written: every watcher learns it must list again.
    pub(super) fn restored(&self, revision: u64) {
        let restores = self.restores.load(Ordering::Acquire);
        self.feed.send_replace(Feed { revision, restores });
    }
}

impl Catalogue {
    /// Appends events at `revision` to `batch` and trims the oldest revisions past
    /// `raft.max_watch_events` revisions or `raft.max_watch_event_bytes` bytes (the newest
    /// revision stays, however big).
    pub(crate) fn put_events(
        &self,
        batch: &mut WriteBatch,
        revision: u64,
        events: &[WatchEvent],
    ) -> Result<(), CatalogError> {
        let log = &self.inner.events;
        let db = &self.inner.db;
        let ev = cf(db, CF_EVENTS)?;
        let mut sizes = lock(&log.sizes);
        for (i, e) in events.iter().enumerate() {
            let value = e.encode_to_vec();
            sizes.add(revision, value.len() as u64);
            batch.put_cf(ev, event_key(revision, i as u32), value);
        }
        let floor = log.floor();
        let max_bytes = log.max_bytes.load(Ordering::Acquire);
        let mut new_floor = floor;
        while sizes.revisions.len() > 1
            && (revision.saturating_sub(new_floor) > log.max_revisions || sizes.bytes > max_bytes)
        {
            let Some((oldest, bytes)) = sizes.revisions.pop_front() else {
                break;
            };
            sizes.bytes -= bytes;
            new_floor = new_floor.max(oldest);
        }
        if revision.saturating_sub(new_floor) > log.max_revisions {
            // Revisions without events (none are written today) count as trimmed too.
            new_floor = revision - log.max_revisions;
        }
        if new_floor > floor {
            batch.delete_range_cf(ev, event_key(floor + 1, 0), event_key(new_floor + 1, 0));
            batch.put_cf(
                cf(db, CF_CATALOG_META)?,
                KEY_EVENT_FLOOR,
                new_floor.to_be_bytes(),
            );
            // Raised before the batch is written: a reader whose view lacks the trimmed
            // events already sees the new floor (see `events_page`).
            log.floor.store(new_floor, Ordering::Release);
        }
        Ok(())
    }

    /// Trims up to `max` of the oldest revisions committed before `before` (the newest revision
    /// always stays), in a write of its own: background cleanup's history retention. Runs on
    /// the Raft loop, between applies, as `put_events` does. Returns the new floor and how many
    /// revisions went.
    pub(crate) fn trim_events_before(
        &self,
        before: Instant,
        max: usize,
    ) -> Result<(u64, u64), CatalogError> {
        let log = &self.inner.events;
        let db = &self.inner.db;
        let through = {
            let times = lock(&log.times);
            times
                .iter()
                .take(times.len().saturating_sub(1))
                .take_while(|(_, t)| *t < before)
                .last()
                .map(|(r, _)| *r)
        };
        let floor = log.floor();
        let Some(through) = through.filter(|t| *t > floor) else {
            return Ok((floor, 0));
        };
        let mut sizes = lock(&log.sizes);
        let mut new_floor = floor;
        let mut trimmed = 0u64;
        while sizes.revisions.len() > 1 && (trimmed as usize) < max {
            match sizes.revisions.front().copied() {
                Some((r, bytes)) if r <= through => {
                    sizes.bytes -= bytes;
                    new_floor = new_floor.max(r);
                    sizes.revisions.pop_front();
                    trimmed += 1;
                }
                _ => break,
            }
        }
        if new_floor == floor {
            return Ok((floor, 0));
        }
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            cf(db, CF_EVENTS)?,
            event_key(floor + 1, 0),
            event_key(new_floor + 1, 0),
        );
        batch.put_cf(
            cf(db, CF_CATALOG_META)?,
            KEY_EVENT_FLOOR,
            new_floor.to_be_bytes(),
        );
        // Raised before the write, as `put_events` does.
        log.floor.store(new_floor, Ordering::Release);
        db.write(batch)?;
        lock(&log.times).retain(|(r, _)| *r > new_floor);
        Ok((new_floor, trimmed))
    }

    /// The revision feed, for watchers to wait on.
    pub fn feed(&self) -> watch::Receiver<Feed> {
        self.inner.events.feed.subscribe()
    }

    /// The bytes the event log holds now (for tests and metrics).
    pub fn event_log_bytes(&self) -> u64 {
        lock(&self.inner.events.sizes).bytes
    }

    /// Events from `from` on, at most about `max_bytes` of them (at least one, if any),
    /// oldest first. `Compacted` if some the watcher has not seen were trimmed, `Replaced`
    /// if a snapshot replaced the catalogue since the watcher's `restores`.
    pub fn events_page(
        &self,
        from: Cursor,
        restores: u64,
        max_bytes: usize,
    ) -> Result<Page, CatalogError> {
        let db = &self.inner.db;
        let mut it = db.raw_iterator_cf(cf(db, CF_EVENTS)?);
        it.seek(event_key(from.revision, from.index));
        // The iterator's view is fixed from here on; the floor and restore count are raised
        // before the writes that trim or replace the log, so reading them now is safe.
        let log = &self.inner.events;
        if log.restores.load(Ordering::Acquire) != restores {
            return Err(CatalogError::Replaced);
        }
        let floor = log.floor();
        if from.revision <= floor {
            return Err(CatalogError::Compacted {
                requested: from.revision.saturating_sub(1),
                oldest: floor,
            });
        }
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let mut next = from;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let (revision, index) = decode_key(k)?;
            if !events.is_empty() && bytes + v.len() > max_bytes {
                // The next page starts at this event.
                return Ok(Page {
                    events,
                    bytes,
                    next: Cursor { revision, index },
                });
            }
            bytes += v.len();
            events.push(WatchEvent::decode(v).map_err(|e| CatalogError::Storage(e.to_string()))?);
            // A revision's events are written in one batch: this view holds all of them.
            next = Cursor::after(revision);
            it.next();
        }
        it.status()?;
        Ok(Page {
            events,
            bytes,
            next,
        })
    }
}

pub(super) fn event_key(revision: u64, i: u32) -> Vec<u8> {
    let mut k = revision.to_be_bytes().to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn decode_key(k: &[u8]) -> Result<(u64, u32), CatalogError> {
    let bad = || CatalogError::Storage(format!("corrupt event key {k:?}"));
    let (r, i) = k.split_at_checked(8).ok_or_else(bad)?;
    Ok((
        u64::from_be_bytes(r.try_into().map_err(|_| bad())?),
        u32::from_be_bytes(i.try_into().map_err(|_| bad())?),
    ))
}

#[cfg(test)]
mod tests;
