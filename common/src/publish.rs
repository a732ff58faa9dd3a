//! The client side of pipelined publishing (`Streams.PublishStream`): publishes go out in
//! frames of whatever is ready, acks come back one by one, in order.

use futures::{Stream, StreamExt};
use tonic::client::GrpcService;
use tonic::codegen::{Body, Bytes, StdError};
use tonic::Status;
use tributary_proto::v1::{streams_client::StreamsClient, PubAck, PublishBatch, PublishRequest};

/// Most publishes sent in one frame.
pub const FRAME_MESSAGES: usize = 512;

/// Sends `reqs` without waiting for acks, coalescing those already produced into one frame
/// (never waiting to fill one); yields one ack per request, in request order. `T` is a
/// `Channel`, or one with an interceptor (e.g. adding a stream secret).
pub async fn pipelined<T>(
    client: &mut StreamsClient<T>,
    reqs: impl Stream<Item = PublishRequest> + Send + 'static,
) -> Result<impl Stream<Item = Result<PubAck, Status>> + Unpin + Send, Status>
where
    T: GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let frames = reqs
        .ready_chunks(FRAME_MESSAGES)
        .map(|messages| PublishBatch { messages });
    let acks = client.publish_stream(frames).await?.into_inner();
    Ok(acks.flat_map(|frame| {
        futures::stream::iter(match frame {
            Ok(f) => f.acks.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        })
    }))
}
