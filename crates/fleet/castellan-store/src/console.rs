//! The operator console's accounts and sessions: an operator's password (an Argon2id PHC
//! string hashed by the console; the store never sees a password), failed-login counting with
//! lockout, and browser sessions with their CSRF token.
//!
//! A session id is 32 random bytes handed to the browser once; only its SHA-256 is stored, and
//! it is looked up by that hash and compared again in constant time (as API tokens are). A
//! session ends at its absolute expiry, after a time without requests, at logout, or when its
//! operator is disabled.

use subtle::ConstantTimeEq as _;

use crate::access::operator_from_row;
use crate::{Operator, Store, StoreError, sha256_hex};

/// An operator's password record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordRecord {
    /// The account.
    pub operator: Operator,
    /// The Argon2id hash, as a PHC string.
    pub phc: String,
    /// Failed logins since the last success or lockout.
    pub failed_logins: u32,
    /// Until when (Unix seconds) logins are refused, if locked.
    pub locked_until: Option<i64>,
    /// The TOTP secret (base32), when the account has a second factor.
    pub totp_secret: Option<String>,
}

/// A new console session: what the browser gets, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConsoleSession {
    /// The session id (cookie value).
    pub id: String,
    /// The CSRF token every state-changing request of the session must carry.
    pub csrf_token: String,
    /// When the session ends (Unix seconds).
    pub expires_at: i64,
}

/// A live console session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Whose session it is.
    pub operator: Operator,
    /// Its CSRF token.
    pub csrf_token: String,
    /// When it ends (Unix seconds).
    pub expires_at: i64,
}

fn random_hex() -> Result<String, StoreError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|_| StoreError::Random)?;
    Ok(hex::encode(secret))
}

impl Store {
    /// Set (or replace) an operator's password hash; clears failed logins and any lockout.
    pub async fn set_operator_password(
        &self,
        operator: &str,
        phc: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO operator_passwords (operator, phc, failed_logins, locked_until, \
             updated_at) VALUES ($1, $2, 0, NULL, $3) ON CONFLICT (operator) DO UPDATE SET \
             phc = excluded.phc, failed_logins = 0, locked_until = NULL, \
             updated_at = excluded.updated_at",
            vec![operator.into(), phc.into(), at.into()],
        )
        .await
        .map_err(|e| match e {
            StoreError::Constraint { .. } => StoreError::NotFound {
                what: "operator",
                key: operator.into(),
            },
            other => other,
        })?;
        Ok(())
    }

    /// The password record of `operator`, if it has one.
    pub async fn operator_password(
        &self,
        operator: &str,
    ) -> Result<Option<PasswordRecord>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT o.name, o.role, o.disabled, p.phc, p.failed_logins, p.locked_until, \
                 p.totp_secret FROM operator_passwords p JOIN operators o ON o.name = p.operator \
                 WHERE p.operator = $1",
                vec![operator.into()],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(PasswordRecord {
            operator: operator_from_row(&r)?,
            phc: r.text(3)?,
            failed_logins: u32::try_from(r.int(4)?).unwrap_or(u32::MAX),
            locked_until: r.opt_int(5)?,
            totp_secret: r.opt_text(6)?,
        }))
    }

    /// Count a failed login of `operator`. At `max_failures` the account is locked until
    /// `now + lockout_secs` (and the count starts again); returns the end of that lockout.
    pub async fn record_failed_login(
        &self,
        operator: &str,
        now: i64,
        max_failures: u32,
        lockout_secs: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "UPDATE operator_passwords SET failed_logins = failed_logins + 1 \
                 WHERE operator = $1 RETURNING failed_logins",
                vec![operator.into()],
            )
            .await?;
        let failures = match row {
            Some(r) => r.int(0)?,
            None => return Ok(None),
        };
        if failures < i64::from(max_failures) {
            return Ok(None);
        }
        let until = now.saturating_add(lockout_secs);
        s.exec(
            "UPDATE operator_passwords SET failed_logins = 0, locked_until = $2 \
             WHERE operator = $1",
            vec![operator.into(), until.into()],
        )
        .await?;
        Ok(Some(until))
    }

    /// Set (or, with `None`, remove) an operator's TOTP secret (base32). The operator must have
    /// a password.
    pub async fn set_operator_totp(
        &self,
        operator: &str,
        secret: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE operator_passwords SET totp_secret = $2, totp_last_step = NULL \
                 WHERE operator = $1",
                vec![operator.into(), secret.into()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "operator password",
                key: operator.into(),
            });
        }
        Ok(())
    }

    /// Accept the TOTP time step `step` for `operator` once: true if it is later than every
    /// step accepted before (false: a replayed or older code).
    pub async fn use_totp_step(&self, operator: &str, step: i64) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "UPDATE operator_passwords SET totp_last_step = $2 WHERE operator = $1 \
                 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                vec![operator.into(), step.into()],
            )
            .await?;
        Ok(n == 1)
    }

    /// A successful login: the failure count and any expired lockout are cleared.
    pub async fn clear_failed_logins(&self, operator: &str) -> Result<(), StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "UPDATE operator_passwords SET failed_logins = 0, locked_until = NULL \
             WHERE operator = $1",
            vec![operator.into()],
        )
        .await?;
        Ok(())
    }

    /// Open a console session for `operator`, valid until `now + ttl_secs`, with a fresh id
    /// and CSRF token.
    pub async fn create_console_session(
        &self,
        operator: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<NewConsoleSession, StoreError> {
        let session = NewConsoleSession {
            id: random_hex()?,
            csrf_token: random_hex()?,
            expires_at: now.saturating_add(ttl_secs),
        };
        let mut s = self.session().await?;
        s.exec(
            "INSERT INTO console_sessions (id_hash, operator, csrf_token, created_at, \
             expires_at, last_seen) VALUES ($1, $2, $3, $4, $5, $4)",
            vec![
                sha256_hex(session.id.as_bytes()).into(),
                operator.into(),
                session.csrf_token.as_str().into(),
                now.into(),
                session.expires_at.into(),
            ],
        )
        .await?;
        Ok(session)
    }

    /// The live session with this id at `now`, marked used: unknown, expired, idle for
    /// `idle_secs` or more (both deleted on sight) or of a disabled operator gives `None`.
    pub async fn console_session(
        &self,
        id: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let hash = sha256_hex(id.as_bytes());
        let mut s = self.session().await?;
        let row = s
            .query_opt(
                "SELECT o.name, o.role, o.disabled, c.id_hash, c.csrf_token, c.expires_at, \
                 c.last_seen FROM console_sessions c JOIN operators o ON o.name = c.operator \
                 WHERE c.id_hash = $1",
                vec![hash.as_str().into()],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        if !bool::from(r.text(3)?.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        let session = ConsoleSession {
            operator: operator_from_row(&r)?,
            csrf_token: r.text(4)?,
            expires_at: r.int(5)?,
        };
        let last_seen = r.int(6)?;
        if now >= session.expires_at || now.saturating_sub(last_seen) >= idle_secs {
            s.exec(
                "DELETE FROM console_sessions WHERE id_hash = $1",
                vec![hash.into()],
            )
            .await?;
            return Ok(None);
        }
        // Written at most once a minute per session.
        if now.saturating_sub(last_seen) >= 60 {
            s.exec(
                "UPDATE console_sessions SET last_seen = $2 WHERE id_hash = $1",
                vec![hash.into(), now.into()],
            )
            .await?;
        }
        Ok((!session.operator.disabled).then_some(session))
    }

    /// End one session (logout). Returns false when it was unknown.
    pub async fn end_console_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut s = self.session().await?;
        let n = s
            .exec(
                "DELETE FROM console_sessions WHERE id_hash = $1",
                vec![sha256_hex(id.as_bytes()).into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// End every session of `operator` (password change, account disabled); returns how many.
    pub async fn end_console_sessions_of(&self, operator: &str) -> Result<u64, StoreError> {
        let mut s = self.session().await?;
        s.exec(
            "DELETE FROM console_sessions WHERE operator = $1",
            vec![operator.into()],
        )
        .await
    }
}
