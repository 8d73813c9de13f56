//! TUF metadata over MQTT, for devices that only speak MQTT: a request/response pair on the
//! device's own topics. The server answers from the same repository directory it serves over
//! HTTPS (`/tuf/metadata/…`, `/tuf/targets/…`); the device's TUF client judges every byte with
//! its own root, so the transport only has to bound what it carries.
//!
//! ```text
//!  device ── dev/<id>/up/tuf/request    TufRequest  {request_id, kind, name, max_length}
//!  server ── dev/<id>/down/tuf/response TufResponse {request_id, answer, data (hex)}
//! ```
//!
//! A file larger than the request's `max_length` or than [`MAX_TUF_FILE`] is answered
//! `too_large`, never sent (TUF's endless-data attack is stopped at both ends).

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::fields;

/// The largest file one response carries, in bytes (its hex must fit the device's MQTT
/// packet limit of 1 MiB with room to spare).
pub const MAX_TUF_FILE: u64 = 384 * 1024;

/// What a [`TufRequest`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TufFileKind {
    /// A metadata file by name (`timestamp.json`, `2.root.json`, `3.sensor-v1.json`).
    Metadata,
    /// A target file by its repository path (`<class>/<sha256>.<name>`).
    Target,
}

/// `dev/<id>/up/tuf/request`: the device asks for one file of the TUF repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TufRequest {
    /// Chosen by the device; the response carries it back.
    pub request_id: u64,
    /// Metadata or target.
    pub kind: TufFileKind,
    /// The file's name (metadata) or repository path (target).
    pub name: String,
    /// The most bytes the device accepts for it.
    pub max_length: u64,
}

/// How the server answers a [`TufRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TufAnswer {
    /// `data` is the file.
    Found,
    /// The repository has no such file (the end of the root chain, for `N.root.json`).
    NotFound,
    /// The file is larger than the request's `max_length` or [`MAX_TUF_FILE`].
    TooLarge,
    /// The server keeps no TUF repository, or could not read it.
    Unavailable,
}

/// `dev/<id>/down/tuf/response`: the answer to one [`TufRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TufResponse {
    /// The request's id.
    pub request_id: u64,
    /// Found, or why not.
    pub answer: TufAnswer,
    /// The file, hex (empty unless `found`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
}

impl TufResponse {
    /// The answer `found`, carrying `bytes`.
    pub fn found(request_id: u64, bytes: &[u8]) -> TufResponse {
        TufResponse {
            request_id,
            answer: TufAnswer::Found,
            data: hex::encode(bytes),
        }
    }

    /// An answer without data.
    pub fn refused(request_id: u64, answer: TufAnswer) -> TufResponse {
        TufResponse {
            request_id,
            answer,
            data: String::new(),
        }
    }

    /// The file's bytes.
    pub fn data_bytes(&self) -> Result<Vec<u8>, ProtocolError> {
        fields::hex_bytes("TUF response's data", &self.data)
    }
}
