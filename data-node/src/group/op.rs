//! What a replicated stream's log holds: operations, each applied to the stream's storage by
//! every replica in log order. The leader puts every input in the entry (the messages with
//! their timestamps, the expected last seqs, the expiry's clock), so applying is
//! deterministic: every replica takes the same decisions (seq, dedupe, limits, discard,
//! expected last seq) and holds the same messages at the same seqs.

use crate::storage::codec::{Reader, Writer};
use crate::storage::streams::replicate::{Appended, SourceProgress};
use crate::storage::streams::{
    PubResult, RawMessage, StreamError, StreamLimits, StreamResult, StreamStore,
};
use crate::storage::{NewMessage, StorageError};

const PUBLISH: u8 = 1;
const PURGE: u8 = 2;
const DELETE: u8 = 3;
const EXPIRE: u8 = 4;
const LIMITS: u8 = 5;
const SOURCED: u8 = 6;
const MIRRORED: u8 = 7;
const RESET_MIRROR: u8 = 8;

#[derive(Debug, Clone)]
pub enum Op {
    /// Messages and their expected last seqs, stored in order.
    Publish(Vec<(NewMessage, Option<u64>)>),
    /// Every message, or those whose subject matches.
    Purge(Option<String>),
    Delete(u64),
    /// Age limit and dedupe window, at the leader's clock.
    Expire(i64),
    /// The stream's limits from its catalogue config: a change reaches every replica at the
    /// same point of the log, so no replica applies a publish under other limits.
    Limits(StreamLimits),
    /// A source worker's copy (on the leader): messages appended with the stream's next seqs
    /// and the origin progress, applied only while the progress is still `expect` — a worker
    /// that started from a stale view (a leader not yet caught up) is refused, never doubles.
    Sourced {
        key: String,
        expect: Option<SourceProgress>,
        msgs: Vec<RawMessage>,
        progress: SourceProgress,
    },
    /// A mirror worker's copy: messages at the origin's seqs after `after`, the last seq moved
    /// to `through`; applied only while the stream's last seq is still `after`.
    Mirrored {
        after: u64,
        msgs: Vec<RawMessage>,
        through: u64,
        incarnation: u64,
    },
    /// A mirror of a new origin starts over.
    ResetMirror,
}

/// What applying an operation did, for the client that asked.
#[derive(Debug)]
pub enum Outcome {
    Published(Vec<StreamResult<PubResult>>),
    Purged(StreamResult<u64>),
    Deleted(StreamResult<()>),
    /// Expiry and limits: nobody waits for them.
    Expired,
    /// What a mirror or source worker's copy stored.
    Copied(StreamResult<Appended>),
}

fn put_raw(w: &mut Writer, msgs: &[RawMessage]) {
    w.u32(msgs.len() as u32);
    for m in msgs {
        w.u64(m.seq)
            .bytes(m.subject.as_bytes())
            .i64(m.timestamp_ns)
            .bytes(&m.value);
    }
}

fn get_raw(r: &mut Reader<'_>, len: usize) -> Result<Vec<RawMessage>, StorageError> {
    let n = r.u32()? as usize;
    // Each message takes at least 24 bytes: a count past that is corrupt.
    if n > len / 24 + 1 {
        return Err(StorageError::Corrupt("stream group entry count".into()));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(RawMessage {
            seq: r.u64()?,
            subject: r.string()?,
            timestamp_ns: r.i64()?,
            value: bytes::Bytes::copy_from_slice(r.bytes()?),
        });
    }
    Ok(out)
}

impl Op {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Op::Publish(msgs) => {
                w.u8(PUBLISH).u32(msgs.len() as u32);
                for (m, expected) in msgs {
                    w.bytes(m.subject.as_bytes())
                        .map(&m.headers)
                        .bytes(&m.data)
                        .i64(m.timestamp_ns)
                        .u64(expected.map_or(0, |e| e.saturating_add(1)));
                }
            }
            Op::Purge(subject) => {
                w.u8(PURGE);
                match subject {
                    Some(s) => w.u8(1).bytes(s.as_bytes()),
                    None => w.u8(0),
                };
            }
            Op::Delete(seq) => {
                w.u8(DELETE).u64(*seq);
            }
            Op::Expire(now) => {
                w.u8(EXPIRE).i64(*now);
            }
            Op::Limits(l) => {
                let flags = u8::from(l.discard_new)
                    | (u8::from(l.deny_delete) << 1)
                    | (u8::from(l.deny_purge) << 2);
                w.u8(LIMITS)
                    .u64(l.max_msgs)
                    .u64(l.max_bytes)
                    .u64(l.max_age_ns)
                    .u64(l.max_msg_size)
                    .u64(l.max_msgs_per_subject)
                    .u64(l.duplicate_window_ns)
                    .u8(flags);
            }
            Op::Sourced {
                key,
                expect,
                msgs,
                progress,
            } => {
                w.u8(SOURCED).bytes(key.as_bytes());
                match expect {
                    Some(p) => w.u8(1).u64(p.next_seq).u64(p.incarnation),
                    None => w.u8(0),
                };
                put_raw(&mut w, msgs);
                w.u64(progress.next_seq).u64(progress.incarnation);
            }
            Op::Mirrored {
                after,
                msgs,
                through,
                incarnation,
            } => {
                w.u8(MIRRORED).u64(*after);
                put_raw(&mut w, msgs);
                w.u64(*through).u64(*incarnation);
            }
            Op::ResetMirror => {
                w.u8(RESET_MIRROR);
            }
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Op, StorageError> {
        let mut r = Reader::new(buf, "stream group entry");
        Ok(match r.u8()? {
            PUBLISH => {
                let n = r.u32()? as usize;
                // Each message takes at least 28 bytes: a count past that is corrupt.
                if n > buf.len() / 28 + 1 {
                    return Err(StorageError::Corrupt("stream group entry count".into()));
                }
                let mut msgs = Vec::with_capacity(n);
                for _ in 0..n {
                    let subject = r.string()?;
                    let headers = r.map()?;
                    let data = bytes::Bytes::copy_from_slice(r.bytes()?);
                    let timestamp_ns = r.i64()?;
                    let expected = r.u64()?.checked_sub(1);
                    msgs.push((
                        NewMessage {
                            subject,
                            headers,
                            data,
                            timestamp_ns,
                        },
                        expected,
                    ));
                }
                Op::Publish(msgs)
            }
            PURGE => Op::Purge(match r.u8()? {
                0 => None,
                _ => Some(r.string()?),
            }),
            DELETE => Op::Delete(r.u64()?),
            EXPIRE => Op::Expire(r.i64()?),
            LIMITS => {
                let (max_msgs, max_bytes, max_age_ns) = (r.u64()?, r.u64()?, r.u64()?);
                let (max_msg_size, max_msgs_per_subject) = (r.u64()?, r.u64()?);
                let duplicate_window_ns = r.u64()?;
                let flags = r.u8()?;
                Op::Limits(StreamLimits {
                    max_msgs,
                    max_bytes,
                    max_age_ns,
                    max_msg_size,
                    max_msgs_per_subject,
                    discard_new: flags & 1 != 0,
                    duplicate_window_ns,
                    deny_delete: flags & 2 != 0,
                    deny_purge: flags & 4 != 0,
                })
            }
            SOURCED => {
                let key = r.string()?;
                let expect = match r.u8()? {
                    0 => None,
                    _ => Some(SourceProgress {
                        next_seq: r.u64()?,
                        incarnation: r.u64()?,
                    }),
                };
                let msgs = get_raw(&mut r, buf.len())?;
                let progress = SourceProgress {
                    next_seq: r.u64()?,
                    incarnation: r.u64()?,
                };
                Op::Sourced {
                    key,
                    expect,
                    msgs,
                    progress,
                }
            }
            MIRRORED => {
                let after = r.u64()?;
                let msgs = get_raw(&mut r, buf.len())?;
                Op::Mirrored {
                    after,
                    msgs,
                    through: r.u64()?,
                    incarnation: r.u64()?,
                }
            }
            RESET_MIRROR => Op::ResetMirror,
            other => {
                return Err(StorageError::Corrupt(format!(
                    "stream group entry of kind {other}"
                )))
            }
        })
    }

    /// Applies the operation at log `index` to the stream.
    pub fn apply(self, store: &StreamStore, index: u64) -> Outcome {
        store.set_group_index(index);
        match self {
            Op::Publish(msgs) => Outcome::Published(store.publish_batch(msgs)),
            Op::Purge(subject) => Outcome::Purged(store.purge(subject.as_deref())),
            Op::Delete(seq) => Outcome::Deleted(store.delete_message(seq)),
            Op::Expire(now) => {
                if let Err(e) = store.expire(now) {
                    tracing::warn!(stream = %store.name, error = %e, "expiry failed");
                }
                Outcome::Expired
            }
            Op::Limits(l) => {
                store.set_limits(l);
                Outcome::Expired
            }
            Op::Sourced {
                key,
                expect,
                msgs,
                progress,
            } => Outcome::Copied(match store.source_progress(&key) {
                Ok(now) if now == expect => store.append_sourced(msgs, &key, progress),
                Ok(now) => Err(StreamError::Refused(format!(
                    "stream {}: the source's progress is {now:?}, not {expect:?}: resume from it",
                    store.name
                ))),
                Err(e) => Err(e.into()),
            }),
            Op::Mirrored {
                after,
                msgs,
                through,
                incarnation,
            } => Outcome::Copied(match store.state().last_seq {
                last if last == after => store
                    .prepare_mirrored(msgs, after)
                    .and_then(|p| store.commit_mirrored(p, through, incarnation)),
                last => Err(StreamError::Refused(format!(
                    "stream {} is at seq {last}, not {after}: resume from it",
                    store.name
                ))),
            }),
            Op::ResetMirror => Outcome::Copied(store.reset_mirror().map(|()| Appended::default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_round_trip_and_junk_is_refused() {
        let msg = NewMessage {
            subject: "a.b".into(),
            headers: [("Msg-Id".to_string(), "1".to_string())].into(),
            data: bytes::Bytes::from_static(b"hello"),
            timestamp_ns: 42,
        };
        let ops = [
            Op::Publish(vec![(msg.clone(), None), (msg, Some(0))]),
            Op::Purge(Some("a.*".into())),
            Op::Purge(None),
            Op::Delete(7),
            Op::Expire(-1),
            Op::Limits(StreamLimits {
                max_msgs: 5,
                deny_purge: true,
                discard_new: true,
                ..Default::default()
            }),
            Op::Sourced {
                key: "|O|".into(),
                expect: Some(SourceProgress {
                    next_seq: 3,
                    incarnation: 9,
                }),
                msgs: vec![RawMessage {
                    seq: 3,
                    subject: "O.a".into(),
                    timestamp_ns: 5,
                    value: vec![1, 2, 3].into(),
                }],
                progress: SourceProgress {
                    next_seq: 4,
                    incarnation: 9,
                },
            },
            Op::Mirrored {
                after: 2,
                msgs: vec![],
                through: 7,
                incarnation: 1,
            },
            Op::ResetMirror,
        ];
        for op in ops {
            let back = Op::decode(&op.encode()).expect("decodes");
            assert_eq!(format!("{op:?}"), format!("{back:?}"));
        }
        for junk in [
            &[][..],
            &[9],
            &[1, 0xff, 0xff, 0xff, 0xff],
            &[1, 0, 0, 0, 1, 0],
        ] {
            assert!(Op::decode(junk).is_err(), "{junk:?}");
        }
    }
}
