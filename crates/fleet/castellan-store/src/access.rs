//! Operators, their roles and their API tokens, and single-use onboarding nonces.
//!
//! Only the SHA-256 of a token is stored. A token is looked up by its hash (so the database's
//! comparison, and its timing, only ever sees a hash of the guess, never a prefix of a real
//! token), and the hash found is compared again in constant time.

use subtle::ConstantTimeEq as _;

use crate::registry::finish;
use crate::{Store, StoreError, sha256_hex};

/// An operator's role; every API endpoint names the roles it admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including managing operators.
    Admin,
    /// Releases and update campaigns.
    ReleaseManager,
    /// Day-to-day fleet operation (provisioning, quarantine, healing).
    Operator,
    /// Read-only access, including the audit log.
    Auditor,
    /// Decommissioning devices for good (crypto-erase): the only role that may ask for it or
    /// approve it, not even an admin (separation of duties, `docs/response.md`).
    Decommissioner,
}

impl Role {
    /// The role's name as stored and shown ("admin", "release-manager", "operator", "auditor",
    /// "decommissioner").
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReleaseManager => "release-manager",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Decommissioner => "decommissioner",
        }
    }

    /// The role with this name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "release-manager" => Role::ReleaseManager,
            "operator" => Role::Operator,
            "auditor" => Role::Auditor,
            "decommissioner" => Role::Decommissioner,
            _ => return None,
        })
    }
}

impl core::fmt::Display for Role {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// The operator's name.
    pub name: String,
    /// The operator's role.
    pub role: Role,
    /// Whether the account is disabled (its tokens stop working).
    pub disabled: bool,
}

/// Prefix of every API token, so that leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "cst_";

pub(crate) fn operator_from_row(r: &crate::db::Row) -> Result<Operator, StoreError> {
    let role = r.text(1)?;
    Ok(Operator {
        name: r.text(0)?,
        role: Role::parse(&role).ok_or(StoreError::Corrupt {
            what: "role",
            value: role,
        })?,
        disabled: r.bool(2)?,
    })
}

impl Store {
    /// Create an operator account.
    pub async fn create_operator(&self, name: &str, role: Role, at: i64) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO operators (name, role, disabled, created_at) VALUES ($1, $2, 0, $3)",
            vec![name.into(), role.as_str().into(), at.into()],
        )
        .await
        .map_err(|e| match e {
            StoreError::Constraint { .. } => StoreError::AlreadyExists {
                what: "operator",
                key: name.into(),
            },
            other => other,
        })?;
        Ok(())
    }

    /// The operator with this name.
    pub async fn operator(&self, name: &str) -> Result<Option<Operator>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT name, role, disabled FROM operators WHERE name = $1",
                vec![name.into()],
            )
            .await?;
        row.as_ref().map(operator_from_row).transpose()
    }

    /// Every operator, by name.
    pub async fn list_operators(&self) -> Result<Vec<Operator>, StoreError> {
        let mut s = self.session().await?;
        let rows = s
            .query(
                "SELECT name, role, disabled FROM operators ORDER BY name",
                vec![],
            )
            .await?;
        rows.iter().map(operator_from_row).collect()
    }

    /// Disable or re-enable an operator.
    pub async fn set_operator_disabled(
        &self,
        name: &str,
        disabled: bool,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE operators SET disabled = $2 WHERE name = $1",
                vec![name.into(), disabled.into()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "operator",
                key: name.into(),
            });
        }
        Ok(())
    }

    /// Issue a new API token for `operator`; the token itself is returned once and never
    /// stored (only its SHA-256). `expires_at` is Unix seconds, `None` for no expiry.
    pub async fn issue_token(
        &self,
        operator: &str,
        label: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> Result<String, StoreError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| StoreError::Random)?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO api_tokens (token_hash, operator, label, created_at, expires_at, revoked) \
             VALUES ($1, $2, $3, $4, $5, 0)",
            vec![
                sha256_hex(token.as_bytes()).into(),
                operator.into(),
                label.into(),
                at.into(),
                expires_at.into(),
            ],
        )
        .await
        .map_err(|e| match e {
            StoreError::Constraint { .. } => StoreError::NotFound {
                what: "operator",
                key: operator.into(),
            },
            other => other,
        })?;
        Ok(token)
    }

    /// The operator a presented token belongs to, if the token is valid at `now` (known, not
    /// revoked, not expired, operator not disabled).
    pub async fn authenticate_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<Operator>, StoreError> {
        let hash = sha256_hex(token.as_bytes());
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT t.token_hash, t.expires_at, t.revoked, o.name, o.role, o.disabled \
                 FROM api_tokens t JOIN operators o ON o.name = t.operator WHERE t.token_hash = $1",
                vec![hash.as_str().into()],
            )
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let stored = r.text(0)?;
        if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        let expired = r.opt_int(1)?.is_some_and(|e| now >= e);
        let revoked = r.bool(2)?;
        let role = r.text(4)?;
        let op = Operator {
            name: r.text(3)?,
            role: Role::parse(&role).ok_or(StoreError::Corrupt {
                what: "role",
                value: role,
            })?,
            disabled: r.bool(5)?,
        };
        if expired || revoked || op.disabled {
            return Ok(None);
        }
        Ok(Some(op))
    }

    /// Revoke one token. Returns false when it was unknown.
    pub async fn revoke_token(&self, token: &str) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE api_tokens SET revoked = 1 WHERE token_hash = $1",
                vec![sha256_hex(token.as_bytes()).into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// Revoke every token of an operator; returns how many.
    pub async fn revoke_tokens_of(&self, operator: &str) -> Result<u64, StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "UPDATE api_tokens SET revoked = 1 WHERE operator = $1 AND revoked = 0",
            vec![operator.into()],
        )
        .await
    }

    /// Create a fresh 32-byte onboarding nonce for `device_id`, valid until `now + ttl_secs`.
    pub async fn create_nonce(
        &self,
        device_id: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<[u8; 32], StoreError> {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|_| StoreError::Random)?;
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO nonces (nonce, device_id, expires_at) VALUES ($1, $2, $3)",
            vec![
                hex::encode(nonce).into(),
                device_id.into(),
                now.saturating_add(ttl_secs).into(),
            ],
        )
        .await?;
        Ok(nonce)
    }

    /// Use up a nonce: it must exist, belong to `device_id` and not be expired at `now`. A nonce
    /// is deleted by the first attempt to use it, whatever the outcome, so it can never be
    /// replayed.
    pub async fn consume_nonce(
        &self,
        device_id: &str,
        nonce: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.begin().await?;
        let r = async {
            let row = s
                .query_opt(
                    "DELETE FROM nonces WHERE nonce = $1 RETURNING device_id, expires_at",
                    vec![hex::encode(nonce).into()],
                )
                .await?;
            let Some(row) = row else {
                return Err(StoreError::NonceUnknown);
            };
            Ok((row.text(0)?, row.int(1)?))
        }
        .await;
        let (owner, expires_at) = finish(&mut s, r).await?;
        if owner != device_id {
            return Err(StoreError::NonceWrongDevice);
        }
        if now > expires_at {
            return Err(StoreError::NonceExpired);
        }
        Ok(())
    }

    /// Delete nonces that expired before `now`; returns how many.
    pub async fn purge_expired_nonces(&self, now: i64) -> Result<u64, StoreError> {
        let mut s = self.session().await?;
        s.exec("DELETE FROM nonces WHERE expires_at < $1", vec![now.into()])
            .await
    }
}
