//! `Wells.Query` and `Wells.Shards`: reads of a well this node owns. Who: READ on the well
//! (the cluster's own nodes always).

use crate::error::{Error, Result};
use crate::gate::{Gate, Pass};
use crate::node::catalog::canonical;
use crate::node::Node;
use crate::storage::wells::{QuerySpec, Well, COLD};
use prost::Message as _;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tributary_common::access::entity_resource;
use tributary_common::grpc::REPLY_BYTES;
use tributary_common::policy::Permission;
use tributary_common::throttle::Throttle;
use tributary_proto::v1::{
    wells_server::Wells, QueryReply, QueryRequest, ShardInfo, ShardsReply, ShardsRequest, WellEntry,
};

/// Entries per reply message: big enough to amortise framing, small enough for the default
/// 4 MiB gRPC message limit with typical entries.
const PAGE: usize = 512;

/// Splits entries into replies of at most [`REPLY_BYTES`] (at least one entry each).
fn split_by_size(entries: Vec<WellEntry>) -> Vec<Vec<WellEntry>> {
    let mut out: Vec<Vec<WellEntry>> = Vec::new();
    let mut size = 0;
    for e in entries {
        let n = e.data.len() + e.tag.len() + e.source.len() + 16;
        if out.is_empty() || size + n > REPLY_BYTES {
            out.push(Vec::new());
            size = 0;
        }
        size += n;
        if let Some(last) = out.last_mut() {
            last.push(e);
        }
    }
    out
}

pub struct WellsService {
    pub node: Arc<Node>,
    pub gate: Arc<Gate>,
    /// Per-connection rate limits (`[throttling]`) on `Query`; `None`: off.
    pub throttle: Option<Arc<Throttle>>,
}

impl WellsService {
    /// The owned well `req` names, if its caller may read it, and how the caller got in.
    async fn readable<T>(&self, req: &Request<T>, well: &str) -> Result<(Arc<Well>, Pass)> {
        let pass = self.gate.other(req, "reading a well").await?;
        let w = self.node.owned_well("well", well)?;
        let name = canonical(well);
        let policy = self
            .node
            .with_catalog(|c| c.wells.get(&name).map(|w| w.policy.clone()))
            .unwrap_or_default();
        self.gate.require(
            &pass,
            Permission::Read,
            &entity_resource("well", &name),
            &policy,
        )?;
        Ok((w, pass))
    }

    fn spec(&self, req: &QueryRequest) -> Result<QuerySpec> {
        if req.from_ns < 0 || req.to_ns < 0 {
            return Err(Error::invalid(
                "from_ns",
                "times are unix nanoseconds, not negative",
            ));
        }
        if req.to_ns > 0 && req.to_ns <= req.from_ns {
            return Err(Error::invalid(
                "to_ns",
                "must be after from_ns (or 0 for no bound)",
            ));
        }
        let tags = self.node.with_catalog(|c| {
            req.tags
                .iter()
                .filter_map(|t| c.tags.get(t).copied())
                .collect::<Vec<u32>>()
        });
        Ok(QuerySpec {
            from_ns: req.from_ns as u64,
            to_ns: (req.to_ns > 0).then_some(req.to_ns as u64),
            tags,
        })
    }
}

#[tonic::async_trait]
impl Wells for WellsService {
    type QueryStream = ReceiverStream<Result<QueryReply, Status>>;

    #[tracing::instrument(name = "Wells.Query", skip_all, fields(well = %req.get_ref().well))]
    async fn query(
        &self,
        req: Request<QueryRequest>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let (well, pass) = self.readable(&req, &req.get_ref().well).await?;
        let budget = crate::throttling::budget(self.throttle.as_ref(), &req, &pass, "Wells.Query");
        let req = req.into_inner();
        let spec = self.spec(&req)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        if !req.tags.is_empty() && spec.tags.is_empty() {
            // Only unknown tags asked for: nothing can match.
            return Ok(Response::new(ReceiverStream::new(rx)));
        }
        let node = self.node.clone();
        let mut left = if req.limit == 0 { u64::MAX } else { req.limit };
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            let mut cursor: Option<Vec<u8>> = None;
            while left > 0 {
                let page = PAGE.min(usize::try_from(left).unwrap_or(PAGE));
                let (entries, next) = match node.query(&well, &spec, cursor.as_deref(), page) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(Error::from(e).into())).await;
                        return;
                    }
                };
                let entries: Vec<WellEntry> = node.with_catalog(|c| {
                    entries
                        .into_iter()
                        .take(usize::try_from(left).unwrap_or(usize::MAX))
                        .map(|e| WellEntry {
                            timestamp_ns: e.timestamp_ns as i64,
                            tag: c
                                .tag_name(e.value.tag)
                                .map_or_else(|| e.value.tag.to_string(), str::to_string),
                            source: e.value.source.map(|s| s.to_string()).unwrap_or_default(),
                            data: e.value.data,
                            values: e.value.values.into_iter().collect(),
                        })
                        .collect()
                });
                left -= entries.len() as u64;
                // The bounded channel is the flow control: a slow reader parks this task.
                for entries in split_by_size(entries) {
                    let reply = QueryReply { entries };
                    budget.spend(reply.entries.len(), reply.encoded_len()).await;
                    if tx.send(Ok(reply)).await.is_err() {
                        return;
                    }
                }
                match next {
                    Some(c) => cursor = Some(c),
                    None => return,
                }
            }
        }));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(name = "Wells.Shards", skip_all, fields(well = %req.get_ref().well))]
    async fn shards(&self, req: Request<ShardsRequest>) -> Result<Response<ShardsReply>, Status> {
        let (well, _) = self.readable(&req, &req.get_ref().well).await?;
        let shards = well
            .shards()
            .into_iter()
            .map(|s| ShardInfo {
                shard: s.shard,
                start_ns: s.start_ns,
                end_ns: s.end_ns,
                entries: s.stat.entries,
                bytes: s.stat.bytes,
                tier: if s.tier == COLD { "cold" } else { "hot" }.to_string(),
            })
            .collect();
        Ok(Response::new(ShardsReply { shards }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_stay_under_the_cap() {
        let e = |n: usize| WellEntry {
            data: vec![0; n].into(),
            ..Default::default()
        };
        let parts = split_by_size(vec![
            e(REPLY_BYTES / 2),
            e(REPLY_BYTES / 2),
            e(10),
            e(3 * REPLY_BYTES),
        ]);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 2, 1]
        );
        assert!(split_by_size(Vec::new()).is_empty());
    }
}
