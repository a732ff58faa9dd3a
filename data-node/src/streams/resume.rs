//! A subscription this node forwards to a replicated stream's leader survives a change of
//! leader: when the upstream ends or fails as unavailable (the leader went, or stopped
//! leading), it is opened again wherever the stream is led now, from the seq after the last
//! event passed on — no gap, no duplicate. The subscriber sees one unbroken stream.

use super::route::Route;
use super::service::StreamsService;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::Duration;
use tonic::{Code, Status};
use tributary_proto::v1::{SubscribeEvent, SubscribeRequest};

/// How long a subscription may go without an upstream before its subscriber is told.
const GIVE_UP: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_millis(100);

type Events = BoxStream<'static, Result<SubscribeEvent, Status>>;

pub(super) struct Resuming {
    svc: StreamsService,
    name: String,
    req: SubscribeRequest,
    forwards: u32,
    upstream: Option<Events>,
    /// Where to resume: every seq below it was passed on (0: nothing yet).
    next_seq: u64,
}

/// Failures a new leader cures.
fn passing(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted
    )
}

impl Resuming {
    pub(super) fn new(
        svc: StreamsService,
        name: String,
        req: SubscribeRequest,
        forwards: u32,
        first: Events,
    ) -> Resuming {
        Resuming {
            svc,
            name,
            req,
            forwards,
            upstream: Some(first),
            next_seq: 0,
        }
    }

    pub(super) fn stream(self) -> Events {
        futures::stream::unfold(self, |mut r| async move {
            let ev = r.next().await?;
            Some((ev, r))
        })
        .boxed()
    }

    /// The next event, reopening the upstream as needed; None: the end.
    async fn next(&mut self) -> Option<Result<SubscribeEvent, Status>> {
        let deadline = tokio::time::Instant::now() + GIVE_UP;
        let mut last = Status::unavailable("no upstream");
        loop {
            if self.upstream.is_none() {
                if tokio::time::Instant::now() >= deadline {
                    return Some(Err(Status::unavailable(format!(
                        "stream {}: no leader to subscribe to within {GIVE_UP:?}: {}",
                        self.name,
                        last.message()
                    ))));
                }
                tokio::time::sleep(RETRY).await;
                let mut req = self.req.clone();
                if self.next_seq > 0 {
                    req.start_seq = self.next_seq;
                    req.start_time_ns = 0;
                }
                match reopen(&self.svc, &self.name, req, self.forwards).await {
                    Ok(up) => self.upstream = Some(up),
                    Err(s) if passing(&s) => last = s,
                    Err(s) => return Some(Err(s)),
                }
                continue;
            }
            let up = self.upstream.as_mut()?;
            match up.next().await {
                Some(Ok(ev)) => {
                    let after_last = ev
                        .messages
                        .last()
                        .map(|m| m.seq)
                        .max(ev.stored.last().map(|m| m.seq))
                        .map_or(0, |seq| seq + 1);
                    self.next_seq = self.next_seq.max(ev.next_seq).max(after_last);
                    return Some(Ok(ev));
                }
                Some(Err(s)) if passing(&s) => {
                    tracing::debug!(stream = %self.name, status = %s, "subscription upstream lost; reopening");
                    last = s;
                    self.upstream = None;
                }
                Some(Err(s)) => return Some(Err(s)),
                None => self.upstream = None,
            }
        }
    }
}

/// Opens the subscription again where the stream is led now.
async fn reopen(
    svc: &StreamsService,
    name: &str,
    req: SubscribeRequest,
    forwards: u32,
) -> Result<Events, Status> {
    match svc.route(name, forwards).await? {
        Route::Forward(to) => svc.forwarded_subscribe(to, req, forwards).await,
        Route::Leader(store, group) => {
            let spec = super::subscribe::tail_spec(&req, svc.node.incarnation_of(&store))?;
            let tail = store
                .tail(spec)
                .map_err(|e| Status::from(crate::error::Error::from(e)))?;
            Ok(svc.while_leading(name, group, tail, req.stored_form))
        }
        Route::Local(_) => Err(Status::failed_precondition(format!(
            "stream {name} is no longer replicated"
        ))),
    }
}
