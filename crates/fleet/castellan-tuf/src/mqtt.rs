//! TUF over MQTT, both ends of `dev/<id>/{up,down}/tuf/{request,response}`
//! (`castellan-protocol`'s [`TufRequest`] and [`TufResponse`]):
//!
//! ```text
//!  DeviceClient ─ Repository ─▶ ChannelRepository ── FileRequest ──▶ the device's MQTT session
//!                                    ▲ bytes (checked: id, answer,        │ TufRequest
//!                                    │ max_length)                        ▼
//!                                    └──────────── TufResponse ◀── answer(repository dir)
//! ```
//!
//! The client side is a sigstore-tuf [`Repository`] that hands each fetch to whoever owns the
//! MQTT connection (a channel), so the TUF workflow stays the client crate's and the transport
//! stays the device's. The server side reads the same files `/tuf/metadata/…` and
//! `/tuf/targets/…` serve over HTTPS.

use std::path::Path;

use castellan_protocol::{MAX_TUF_FILE, TufAnswer, TufFileKind, TufRequest, TufResponse};
use sigstore_tuf::Repository;
use sigstore_tuf::transport::FetchFuture;
use tokio::sync::{mpsc, oneshot};

use crate::repo;

/// The answer of the repository in `dir` to `request`: the file if it is at most the
/// request's `max_length` and [`MAX_TUF_FILE`] bytes.
pub fn answer(dir: &Path, request: &TufRequest) -> TufResponse {
    let id = request.request_id;
    let file = repo::Repository::open(dir).and_then(|repo| match request.kind {
        TufFileKind::Metadata => repo.metadata_file(&request.name),
        TufFileKind::Target => repo.target_file(&request.name),
    });
    match file {
        Ok(Some(bytes)) if len(&bytes) > request.max_length.min(MAX_TUF_FILE) => {
            TufResponse::refused(id, TufAnswer::TooLarge)
        }
        Ok(Some(bytes)) => TufResponse::found(id, &bytes),
        Ok(None) => TufResponse::refused(id, TufAnswer::NotFound),
        Err(_) => TufResponse::refused(id, TufAnswer::Unavailable),
    }
}

fn len(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

/// One fetch of the TUF client, for the MQTT session to carry.
#[derive(Debug)]
pub struct FileRequest {
    /// Metadata or target.
    pub kind: TufFileKind,
    /// The file's name or path.
    pub name: String,
    /// The most bytes the client accepts.
    pub max_length: u64,
    /// Where the session puts the outcome ([`read_response`] makes it from an answer).
    pub reply: oneshot::Sender<sigstore_tuf::Result<Option<Vec<u8>>>>,
}

impl FileRequest {
    /// The request as it goes on the wire, under the session's `request_id`.
    pub fn to_wire(&self, request_id: u64) -> TufRequest {
        TufRequest {
            request_id,
            kind: self.kind,
            name: self.name.clone(),
            max_length: self.max_length.min(MAX_TUF_FILE),
        }
    }
}

/// The TUF client's transport over a channel to the MQTT session.
#[derive(Debug, Clone)]
pub struct ChannelRepository {
    requests: mpsc::Sender<FileRequest>,
}

/// A transport for [`crate::client::DeviceClient::open`], and the receiving end the MQTT
/// session serves. The channel closes when the client is dropped.
pub fn channel() -> (ChannelRepository, mpsc::Receiver<FileRequest>) {
    let (requests, rx) = mpsc::channel(1);
    (ChannelRepository { requests }, rx)
}

impl ChannelRepository {
    async fn ask(
        &self,
        kind: TufFileKind,
        name: &str,
        max_length: u64,
    ) -> sigstore_tuf::Result<Option<Vec<u8>>> {
        let (reply, outcome) = oneshot::channel();
        let request = FileRequest {
            kind,
            name: name.to_owned(),
            max_length,
            reply,
        };
        let gone = || sigstore_tuf::Error::transport("the MQTT session ended");
        self.requests.send(request).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

impl Repository for ChannelRepository {
    fn fetch_metadata<'a>(&'a self, name: &'a str, max_length: u64) -> FetchFuture<'a> {
        Box::pin(self.ask(TufFileKind::Metadata, name, max_length))
    }

    fn fetch_target<'a>(&'a self, path: &'a str, max_length: u64) -> FetchFuture<'a> {
        Box::pin(self.ask(TufFileKind::Target, path, max_length))
    }
}

/// What the TUF client gets from `response`, the answer to `request`: the bytes, `None` for
/// "not found" (the end of the root chain), or a transport error (too large, unavailable, not
/// hex, more bytes than asked for).
pub fn read_response(
    request: &TufRequest,
    response: &TufResponse,
) -> sigstore_tuf::Result<Option<Vec<u8>>> {
    let refused = |why: &str| {
        Err(sigstore_tuf::Error::transport(format!(
            "{} over MQTT: {why}",
            request.name
        )))
    };
    match response.answer {
        TufAnswer::Found => {
            let Ok(bytes) = response.data_bytes() else {
                return refused("the answer is not hex");
            };
            if len(&bytes) > request.max_length {
                return refused("more bytes than asked for (endless data)");
            }
            Ok(Some(bytes))
        }
        TufAnswer::NotFound => Ok(None),
        TufAnswer::TooLarge => refused("larger than the client accepts (endless data)"),
        _ => refused("the server keeps no TUF repository or cannot read it"),
    }
}
