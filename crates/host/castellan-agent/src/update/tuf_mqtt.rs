//! The TUF client's MQTT transport: while an offer is judged, the session's connection carries
//! each file the client asks for as a request on the device's own `dev/<id>/up/tuf/request`
//! and waits for the answer on `dev/<id>/down/tuf/response`, bounded like a fetch over HTTPS.
//!
//! ```text
//!  DeviceClient ── ChannelRepository ── FileRequest ──▶ serve() ── TufRequest ──▶ server
//!       ▲ bytes (≤ max_length)                            │◀─── TufResponse ──────┘
//!       └──────────────────── read_response() ◀───────────┘   (another message: held, requeued)
//! ```
//!
//! Each answer must come within the fetch's total time limit (slow retrieval); an answer
//! larger than the client accepts is refused (endless data; the MQTT packet limit bounds it
//! before it is read). Messages of other topics that arrive meanwhile are put back for the
//! session loop, in order.

use std::time::Duration;

use castellan_protocol::{TufResponse, WireMessage as _, topics};
use castellan_tuf::mqtt::{FileRequest, read_response};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::mqtt::{Message, MqttConnection};

/// Carry the client's requests over `conn` until the client is done (the channel closes), each
/// answer awaited at most `limit`.
pub(crate) async fn serve(
    conn: &mut MqttConnection,
    device_id: &str,
    mut requests: mpsc::Receiver<FileRequest>,
    limit: Duration,
) {
    let mut held = Vec::new();
    let mut request_id = first_request_id();
    while let Some(request) = requests.recv().await {
        request_id = request_id.wrapping_add(1);
        let outcome = exchange(conn, device_id, &request, request_id, limit, &mut held).await;
        let _ = request.reply.send(outcome);
    }
    conn.requeue(held);
}

/// Request ids start at a different place in each refresh, so that a late answer to an
/// earlier refresh is never taken for one of this refresh.
fn first_request_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        << 8
}

async fn exchange(
    conn: &mut MqttConnection,
    device_id: &str,
    request: &FileRequest,
    request_id: u64,
    limit: Duration,
    held: &mut Vec<Message>,
) -> sigstore_tuf::Result<Option<Vec<u8>>> {
    let wire = request.to_wire(request_id);
    let transport = |why: String| sigstore_tuf::Error::transport(why);
    conn.publish(&Message::qos1(
        topics::tuf_request(device_id),
        wire.to_payload(),
    ))
    .await
    .map_err(|e| transport(format!("TUF request over MQTT: {e}")))?;
    let answers = topics::tuf_response(device_id);
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(transport(format!(
                "no answer for {} over MQTT within {} s (slow retrieval)",
                wire.name,
                limit.as_secs()
            )));
        }
        let message = conn
            .recv(left)
            .await
            .map_err(|e| transport(format!("TUF over MQTT: {e}")))?;
        let Some(message) = message else { continue };
        if message.topic != answers {
            held.push(message);
            continue;
        }
        match TufResponse::parse(&message.payload) {
            Ok(response) if response.request_id == request_id => {
                return read_response(&wire, &response);
            }
            // A late answer to an earlier request, or noise: not this one.
            _ => {}
        }
    }
}
