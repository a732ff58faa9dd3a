//! Reading what the topology is built from: the catalogue's streams, wells, targets and data
//! nodes, each stream's live state from the node that serves it, each data node's ditto
//! workers. tribctl reads through a control-plane member with the user's credentials; a
//! member reads its own catalogue and asks the data nodes as a member of the cluster.

use tributary_proto::v1::{
    entity::Kind, DataNode, DittoStatsReply, EntityKind, Stream, StreamInfoReply, Target, Well,
};

/// A stream's live state, or why its node could not say.
pub type StreamState = Result<StreamInfoReply, String>;

/// Where the catalogue and the live stats come from.
#[tonic::async_trait]
pub trait TopologySource: Send + Sync {
    /// Why the catalogue could not be listed (the whole picture fails with it).
    type Error: Send;

    /// Every entity of `kind` the caller may see.
    async fn list(&self, kind: EntityKind) -> Result<Vec<Kind>, Self::Error>;
    /// `Streams.Info` from the node serving `s`; the error as a person should read it.
    async fn stream_info(&self, s: &Stream) -> StreamState;
    /// `Ditto.Stats` of data node `n`.
    async fn ditto_stats(&self, n: &DataNode) -> Result<DittoStatsReply, String>;
}

/// What the topology is built from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub streams: Vec<(Stream, StreamState)>,
    pub wells: Vec<Well>,
    pub targets: Vec<Target>,
    /// Per data node id, what its ditto workers report.
    pub ditto: Vec<(u64, Result<DittoStatsReply, String>)>,
}

/// Every stream with its state, asked of all nodes at once: a picture of many streams should
/// not take a round trip each, and one node down must not hold the rest back.
pub async fn gather_streams<S: TopologySource + ?Sized>(
    src: &S,
) -> Result<Vec<(Stream, StreamState)>, S::Error> {
    let streams: Vec<Stream> = src
        .list(EntityKind::Stream)
        .await?
        .into_iter()
        .filter_map(|k| match k {
            Kind::Stream(s) => Some(s),
            _ => None,
        })
        .collect();
    let states = futures::future::join_all(streams.iter().map(|s| src.stream_info(s))).await;
    Ok(streams.into_iter().zip(states).collect())
}

/// Streams, wells, targets, and the ditto workers of every data node that owns a well with
/// targets.
pub async fn gather<S: TopologySource + ?Sized>(src: &S) -> Result<Snapshot, S::Error> {
    let streams = gather_streams(src).await?;
    let mut wells = Vec::new();
    for k in src.list(EntityKind::Well).await? {
        if let Kind::Well(w) = k {
            wells.push(w);
        }
    }
    let mut targets = Vec::new();
    for k in src.list(EntityKind::Target).await? {
        if let Kind::Target(t) = k {
            targets.push(t);
        }
    }
    let nodes: Vec<DataNode> = src
        .list(EntityKind::DataNode)
        .await?
        .into_iter()
        .filter_map(|k| match k {
            Kind::DataNode(n) => Some(n),
            _ => None,
        })
        .filter(|n| {
            wells
                .iter()
                .any(|w| w.owner_node == n.id && !w.ditto_targets.is_empty())
        })
        .collect();
    let stats = futures::future::join_all(nodes.iter().map(|n| src.ditto_stats(n))).await;
    Ok(Snapshot {
        streams,
        wells,
        targets,
        ditto: nodes.iter().map(|n| n.id).zip(stats).collect(),
    })
}
