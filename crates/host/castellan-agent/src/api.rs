//! A client of the fleet server's operator API (HTTPS, `Authorization: Bearer cst_…`): the
//! factory registration, and the read-only calls the demo and tests use (devices, telemetry,
//! audit).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AgentError;
use crate::factory::{RegistrationRequest, RegistrationResponse};

/// An operator API client bound to one server and one token.
#[derive(Debug, Clone)]
pub struct FleetApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl FleetApi {
    /// A client for `base_url` (`https://host:port`) that trusts only the CA bundle `ca_pem`
    /// and authenticates with `token`.
    pub fn new(base_url: &str, token: &str, ca_pem: &str) -> Result<FleetApi, AgentError> {
        Ok(FleetApi {
            http: https_client(ca_pem)?,
            base: base_url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /api/v1/factory/devices`.
    pub async fn register(
        &self,
        req: &RegistrationRequest,
    ) -> Result<RegistrationResponse, AgentError> {
        self.post("/api/v1/factory/devices", req).await
    }

    /// `GET` a JSON document.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AgentError> {
        answer(self.send_get(path).await?).await
    }

    /// Sends `GET path` with the token; the response, whatever its status.
    async fn send_get(&self, path: &str) -> Result<reqwest::Response, AgentError> {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(transport)
    }

    /// `POST` a JSON body, answer as JSON.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, AgentError> {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// `PUT` a JSON body, answer as JSON.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, AgentError> {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    /// `DELETE`, answer as JSON.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, AgentError> {
        let r = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(transport)?;
        answer(r).await
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T, AgentError> {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        answer(r).await
    }

    /// `GET` raw bytes (a release's image).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, AgentError> {
        let r = self.send_get(path).await?;
        let status = r.status();
        if !status.is_success() {
            return answer::<serde_json::Value>(r).await.map(|_| Vec::new());
        }
        Ok(r.bytes().await.map_err(transport)?.to_vec())
    }
}

/// An HTTPS client that trusts only the CA bundle `ca_pem` (30 s per request, 10 s to connect).
pub(crate) fn https_client(ca_pem: &str) -> Result<reqwest::Client, AgentError> {
    let tls = crate::tls::server_only_config(ca_pem)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| AgentError::Http {
            status: 0,
            reason: format!("cannot build the HTTPS client: {e}"),
        })
}

fn transport(e: reqwest::Error) -> AgentError {
    // Show the whole cause chain: reqwest's top-level message alone says little.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    AgentError::Http {
        status: 0,
        reason: msg,
    }
}

async fn answer<T: DeserializeOwned>(r: reqwest::Response) -> Result<T, AgentError> {
    let status = r.status();
    let body = r.bytes().await.map_err(transport)?;
    if !status.is_success() {
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v.get("error").and_then(|e| e.as_str()).unwrap_or("");
                let r = v.get("reason").and_then(|e| e.as_str()).unwrap_or("");
                (!e.is_empty() || !r.is_empty()).then(|| format!("{e}: {r}"))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(AgentError::Http {
            status: status.as_u16(),
            reason,
        });
    }
    serde_json::from_slice(&body).map_err(|e| AgentError::protocol("server answer", e))
}
