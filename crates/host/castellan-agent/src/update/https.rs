//! The HTTPS transport of an update: range requests with the offer's bearer token, the server
//! verified against the CA bundle the factory stored. The bytes are untrusted like any other:
//! the secure services check them against the manifest.

use crate::error::AgentError;
use crate::update::protocol::HttpsSource;

/// A client for the update server's image URLs.
#[derive(Debug, Clone)]
pub(crate) struct RangeClient {
    http: reqwest::Client,
}

impl RangeClient {
    /// Trusts only `ca_pem`.
    pub(crate) fn new(ca_pem: &str) -> Result<RangeClient, AgentError> {
        Ok(RangeClient {
            http: crate::api::https_client(ca_pem)?,
        })
    }

    /// `GET url` with `Range: bytes=start-(start+len-1)`: the bytes of a `206` whose
    /// `Content-Range` starts at `start` (at most `len` of them).
    pub(crate) async fn get(
        &self,
        src: &HttpsSource,
        start: u64,
        len: u64,
    ) -> Result<Vec<u8>, AgentError> {
        let end = start + len.max(1) - 1;
        let r = self
            .http
            .get(&src.url)
            .bearer_auth(&src.token)
            .header(reqwest::header::RANGE, format!("bytes={start}-{end}"))
            .send()
            .await
            .map_err(|e| AgentError::Http {
                status: 0,
                reason: format!("GET {}: {e}", src.url),
            })?;
        let status = r.status().as_u16();
        if status != 206 {
            return Err(AgentError::Http {
                status,
                reason: format!("GET {} with a range: expected 206", src.url),
            });
        }
        let range = r
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_default();
        let first = parse_content_range_start(&range).ok_or_else(|| {
            AgentError::protocol_state(format!("206 with a bad Content-Range `{range}`"))
        })?;
        if first != start {
            return Err(AgentError::protocol_state(format!(
                "asked for bytes from {start}, the server sent from {first}"
            )));
        }
        let body = r.bytes().await.map_err(|e| AgentError::Http {
            status: 0,
            reason: format!("reading {}: {e}", src.url),
        })?;
        if body.len() as u64 > len {
            return Err(AgentError::protocol_state(format!(
                "asked for {len} bytes, the server sent {}",
                body.len()
            )));
        }
        Ok(body.to_vec())
    }
}

/// The first byte of `bytes a-b/size`.
fn parse_content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, _size) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = b.trim().parse().ok()?;
    (a <= b).then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range_start("bytes 0-99/1000"), Some(0));
        assert_eq!(parse_content_range_start("bytes 4096-8191/*"), Some(4096));
        assert_eq!(parse_content_range_start("bytes */1000"), None);
        assert_eq!(parse_content_range_start("bytes 9-3/10"), None);
        assert_eq!(parse_content_range_start(""), None);
    }
}
