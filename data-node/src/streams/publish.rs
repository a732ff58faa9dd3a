//! Publishing: single and pipelined publishes found their stream by subject, and runs of
//! publishes to one stream are committed together — in its store (one replica), through its
//! group's log (replicated, led here), or forwarded to where it is led.

use super::route::Route;
use super::service::StreamsService;
use crate::error::{Error, Result};
use crate::gate::Pass;
use crate::group::op::{Op, Outcome};
use crate::storage::streams::StreamStore;
use crate::storage::NewMessage;
use std::collections::HashMap;
use tonic::Status;
use tributary_common::policy::Permission;
use tributary_common::time::now_ns;
use tributary_proto::v1::{PubAck, PublishRequest};

fn new_message(
    subject: String,
    headers: std::collections::HashMap<String, String>,
    data: bytes::Bytes,
) -> NewMessage {
    NewMessage {
        subject,
        headers: headers.into_iter().collect(),
        data,
        timestamp_ns: now_ns(),
    }
}

fn error_ack(id: u64, e: &impl std::fmt::Display) -> PubAck {
    PubAck {
        id,
        error: e.to_string(),
        ..Default::default()
    }
}

/// Commits a run of publishes to a stream of one replica and appends their acks.
fn flush_local(acks: &mut Vec<PubAck>, run: Vec<PublishRequest>, store: &StreamStore) {
    let (ids, msgs): (Vec<u64>, Vec<(NewMessage, Option<u64>)>) =
        run.into_iter().map(|r| (r.id, to_new(r))).unzip();
    let results = store.publish_batch(msgs);
    push_acks(acks, &store.name, ids, results);
}

fn to_new(r: PublishRequest) -> (NewMessage, Option<u64>) {
    let expected = (r.expected_last_seq > 0).then_some(r.expected_last_seq);
    (new_message(r.subject, r.headers, r.data), expected)
}

fn push_acks(
    acks: &mut Vec<PubAck>,
    stream: &str,
    ids: Vec<u64>,
    results: Vec<crate::storage::streams::StreamResult<crate::storage::streams::PubResult>>,
) {
    metrics::counter!("tributary_stream_published_total")
        .increment(results.iter().filter(|r| r.is_ok()).count() as u64);
    for (id, r) in ids.into_iter().zip(results) {
        acks.push(match r {
            Ok(r) => PubAck {
                stream: stream.to_string(),
                seq: r.seq,
                duplicate: r.duplicate,
                id,
                error: String::new(),
            },
            Err(e) => error_ack(id, &e),
        });
    }
}

/// A frame's acks: some known, some waiting on their group.
pub struct Submitted(Vec<Part>);

enum Part {
    Done(Vec<PubAck>),
    Proposed {
        stream: String,
        ids: Vec<u64>,
        rx: crate::group::Submitted,
    },
}

impl Submitted {
    /// Every ack, in the order of the requests.
    pub async fn acks(self) -> Vec<PubAck> {
        let mut out = Vec::new();
        for part in self.0 {
            match part {
                Part::Done(acks) => out.extend(acks),
                Part::Proposed { stream, ids, rx } => match rx.await {
                    Ok(Ok(Outcome::Published(results))) => {
                        push_acks(&mut out, &stream, ids, results)
                    }
                    Ok(Ok(_)) => out.extend(
                        ids.into_iter()
                            .map(|id| error_ack(id, &"unexpected outcome of a publish")),
                    ),
                    Ok(Err(e)) => out.extend(ids.into_iter().map(|id| error_ack(id, &e))),
                    Err(_) => out.extend(
                        ids.into_iter()
                            .map(|id| error_ack(id, &crate::group::GroupError::Stopped)),
                    ),
                },
            }
        }
        out
    }
}

impl StreamsService {
    /// The stream taking `subject`, if `pass` may publish to it: its canonical name.
    fn stream_for(&self, subject: &str, pass: &Pass) -> Result<String> {
        tributary_common::subject::validate_literal(subject)
            .map_err(|e| Error::invalid("subject", e.to_string()))?;
        let (name, mirror) = self
            .node
            .with_catalog(|c| {
                c.stream_for_subject(subject)
                    .map(|s| (s.name.clone(), s.mirror.is_some()))
            })
            .ok_or_else(|| Error::not_found("stream for subject", subject))?;
        self.allowed(pass, Permission::Write, &name)?;
        if mirror {
            return Err(Error::FailedPrecondition(format!(
                "stream {name} is a mirror and takes no publishes"
            )));
        }
        Ok(name)
    }

    /// Commits (or forwards) a run of publishes to stream `name`; a replicated stream's run
    /// led here is only submitted to its group, its acks come once it is applied.
    async fn flush(
        &self,
        acks: &mut Submitted,
        run: &mut Vec<PublishRequest>,
        name: &str,
        forwards: u32,
    ) {
        if run.is_empty() {
            return;
        }
        let run = std::mem::take(run);
        let done = match self.route(name, forwards).await {
            Err(e) => run.iter().map(|r| error_ack(r.id, &e)).collect(),
            Ok(Route::Local(store)) => {
                let mut out = Vec::with_capacity(run.len());
                flush_local(&mut out, run, &store);
                out
            }
            Ok(Route::Leader(store, group)) => {
                let (ids, msgs): (Vec<u64>, Vec<_>) =
                    run.into_iter().map(|r| (r.id, to_new(r))).unzip();
                let submitted = self
                    .node
                    .groups()
                    .ok_or(crate::group::GroupError::Stopped)
                    .and_then(|g| g.submit(group, Op::Publish(msgs)));
                match submitted {
                    Ok(rx) => {
                        acks.0.push(Part::Proposed {
                            stream: store.name.clone(),
                            ids,
                            rx,
                        });
                        return;
                    }
                    Err(e) => ids.into_iter().map(|id| error_ack(id, &e)).collect(),
                }
            }
            Ok(Route::Forward(to)) => self.forward_publishes(to, run, forwards).await,
        };
        acks.0.push(Part::Done(done));
    }

    /// Publishes in order; runs of requests for the same stream are committed together. The
    /// runs are committed (or submitted to their group) before this returns, in order; the
    /// acks are [`Submitted::acks`].
    pub async fn submit_group(
        &self,
        reqs: Vec<PublishRequest>,
        pass: &Pass,
        forwards: u32,
    ) -> Submitted {
        let mut acks = Submitted(Vec::new());
        let mut run: Vec<PublishRequest> = Vec::new();
        let mut run_stream = String::new();
        // Each subject is looked up (grammar, stream, permission) once per group of frames:
        // a publisher mostly repeats a few subjects, in any order.
        let mut found: HashMap<String, String> = HashMap::new();
        for req in reqs {
            if let Err(e) = self.limits.message(&req.subject, &req.headers) {
                self.flush(&mut acks, &mut run, &run_stream, forwards).await;
                acks.0.push(Part::Done(vec![error_ack(req.id, &e)]));
                continue;
            }
            if !found.contains_key(&req.subject) {
                match self.stream_for(&req.subject, pass) {
                    Ok(name) => {
                        found.insert(req.subject.clone(), name);
                    }
                    Err(e) => {
                        self.flush(&mut acks, &mut run, &run_stream, forwards).await;
                        acks.0.push(Part::Done(vec![error_ack(req.id, &e)]));
                        continue;
                    }
                }
            }
            if let Some(name) = found.get(&req.subject).filter(|n| **n != run_stream) {
                let name = name.clone();
                self.flush(&mut acks, &mut run, &run_stream, forwards).await;
                run_stream = name;
            }
            run.push(req);
        }
        self.flush(&mut acks, &mut run, &run_stream, forwards).await;
        acks
    }

    pub async fn publish_one(
        &self,
        req: PublishRequest,
        pass: &Pass,
        forwards: u32,
    ) -> Result<PubAck, Status> {
        self.limits.message(&req.subject, &req.headers)?;
        let name = self.stream_for(&req.subject, pass)?;
        let id = req.id;
        let (stream, r) = match self.route(&name, forwards).await? {
            Route::Local(store) => {
                let (m, expected) = to_new(req);
                let r = store.publish(m, expected)?;
                (store.name.clone(), r)
            }
            Route::Leader(store, group) => {
                let results = self.publish_replicated(group, vec![to_new(req)]).await?;
                let r = results
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Unavailable("no outcome for the publish".into()))??;
                (store.name.clone(), r)
            }
            Route::Forward(to) => {
                let ack = self
                    .peer(to)?
                    .publish(self.peers.request(req, forwards + 1))
                    .await?;
                return Ok(ack.into_inner());
            }
        };
        metrics::counter!("tributary_stream_published_total").increment(1);
        Ok(PubAck {
            stream,
            seq: r.seq,
            duplicate: r.duplicate,
            id,
            error: String::new(),
        })
    }
}
