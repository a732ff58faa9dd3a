//! What a namespace's purge leaves to each data node: once its catalogue view holds no well
//! or stream of the namespace (each delete already dropped the data of what this node served),
//! whatever else names the namespace goes too: the ids and data of its wells and streams this
//! node holds but no longer served (moved away, never opened), and ditto progress whose well
//! or target was in it.

use super::catalog::namespace_of;
use super::Node;
use crate::error::Result;
use crate::storage::ids::decode_u32;
use crate::storage::keys::{self, meta};
use crate::storage::{Batch, Scan, Space};

/// What a scrub removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scrubbed {
    pub wells: u64,
    pub streams: u64,
    pub progress: u64,
}

impl Node {
    /// Whether this node still serves or lists anything of `ns`.
    pub fn holds_namespace(&self, ns: &str) -> bool {
        let listed = self.with_catalog(|c| {
            c.wells.keys().any(|n| namespace_of(n) == ns)
                || c.streams.keys().any(|n| namespace_of(n) == ns)
        });
        listed
            || self.wells.names().iter().any(|n| namespace_of(n) == ns)
            || self
                .streams
                .all()
                .iter()
                .any(|s| namespace_of(&s.name) == ns)
    }

    /// Removes every key left naming `ns` (see the module's doc). Call once nothing of `ns`
    /// is served.
    pub fn scrub_namespace(&self, ns: &str) -> Result<Scrubbed> {
        let mut done = Scrubbed::default();
        let mut b = Batch::default();
        let names = |kind: fn(&str) -> Vec<u8>| -> Result<Vec<(Vec<u8>, u32)>> {
            let start = kind(&format!("{ns}:"));
            let mut out = Vec::new();
            let mut bad = None;
            self.main.scan(
                Space::Meta,
                &start,
                &keys::prefix_end(&start),
                false,
                &mut |k, v| {
                    match decode_u32(v) {
                        Ok(id) => out.push((k.to_vec(), id)),
                        Err(e) => bad = Some(e),
                    }
                    Scan::Continue
                },
            )?;
            match bad {
                Some(e) => Err(e.into()),
                None => Ok(out),
            }
        };
        for (key, id) in names(meta::well_id)? {
            b.delete_range(Space::Wells, keys::well_start(id), keys::well_end(id));
            b.put(
                Space::Meta,
                meta::compaction(Space::Wells.name(), &keys::well_start(id)),
                keys::well_end(id),
            );
            let sp = meta::shard_stat_prefix(id);
            b.delete_range(Space::Meta, sp.clone(), keys::prefix_end(&sp));
            b.delete(Space::Meta, meta::well_seq(id));
            b.delete(Space::Meta, key);
            done.wells += 1;
        }
        for (key, id) in names(meta::stream_id)? {
            for engine in [&self.main, &self.memory] {
                let mut s = Batch::default();
                s.delete_range(
                    Space::Streams,
                    keys::stream_key(id, 0, &[]),
                    keys::stream_end(id),
                );
                engine.write(s)?;
            }
            b.put(
                Space::Meta,
                meta::compaction(Space::Streams.name(), &keys::stream_key(id, 0, &[])),
                keys::stream_end(id),
            );
            b.delete(Space::Meta, key);
            done.streams += 1;
        }
        let start = meta::ditto_progress("", "");
        let start = &start[..start.len() - 1];
        let prefix = format!("{ns}:");
        self.main.scan(
            Space::Meta,
            start,
            &keys::prefix_end(start),
            false,
            &mut |k, _| {
                let rest = &k[start.len()..];
                let mut parts = rest.split(|c| *c == 0);
                let well = parts.next().unwrap_or_default();
                let target = parts.next().unwrap_or_default();
                if well.starts_with(prefix.as_bytes()) || target.starts_with(prefix.as_bytes()) {
                    b.delete(Space::Meta, k.to_vec());
                    done.progress += 1;
                }
                Scan::Continue
            },
        )?;
        if !b.is_empty() {
            self.main.write(b)?;
        }
        Ok(done)
    }
}
