//! Operators, roles, API tokens and onboarding nonces, on SQLite and PostgreSQL.

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{Role, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_roles() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        for (name, role) in [
            ("ann", Role::Admin),
            ("rob", Role::ReleaseManager),
            ("ola", Role::Operator),
            ("aud", Role::Auditor),
        ] {
            s.create_operator(name, role, 1).await.unwrap();
            assert_eq!(s.operator(name).await.unwrap().unwrap().role, role);
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(matches!(
            s.create_operator("ann", Role::Auditor, 1).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        let names: Vec<String> = s
            .list_operators()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, ["ann", "aud", "ola", "rob"]);
        assert_eq!(Role::parse("root"), None);
        assert!(s.operator("nobody").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_authenticate_until_revoked_expired_or_disabled() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.create_operator("ola", Role::Operator, 1).await.unwrap();
        let token = s.issue_token("ola", "laptop", 10, None).await.unwrap();
        assert!(
            token.starts_with("cst_") && token.len() == 4 + 64,
            "{token}"
        );
        let op = s.authenticate_token(&token, 20).await.unwrap().unwrap();
        assert_eq!((op.name.as_str(), op.role), ("ola", Role::Operator));

        let short = s.issue_token("ola", "ci", 10, Some(100)).await.unwrap();
        assert!(s.authenticate_token(&short, 99).await.unwrap().is_some());
        assert!(
            s.authenticate_token(&short, 100).await.unwrap().is_none(),
            "expired"
        );

        s.set_operator_disabled("ola", true).await.unwrap();
        assert!(
            s.authenticate_token(&token, 20).await.unwrap().is_none(),
            "disabled operator"
        );
        s.set_operator_disabled("ola", false).await.unwrap();
        assert!(s.authenticate_token(&token, 20).await.unwrap().is_some());

        assert!(s.revoke_token(&token).await.unwrap());
        assert!(
            s.authenticate_token(&token, 20).await.unwrap().is_none(),
            "revoked"
        );
        assert!(!s.revoke_token("cst_unknown").await.unwrap());
        let t2 = s.issue_token("ola", "b", 10, None).await.unwrap();
        assert_eq!(
            s.revoke_tokens_of("ola").await.unwrap(),
            2,
            "the short token and t2"
        );
        assert!(s.authenticate_token(&t2, 20).await.unwrap().is_none());

        assert!(matches!(
            s.issue_token("ghost", "x", 1, None).await,
            Err(StoreError::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_token_guessing_uses_constant_time_hash_lookup() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        s.create_operator("ann", Role::Admin, 1).await.unwrap();
        let token = s.issue_token("ann", "x", 1, None).await.unwrap();
        // The database never holds the token, only its SHA-256: a stolen database gives no
        // usable token, and the lookup compares hashes, so timing reveals nothing about the
        // token's characters.
        let dump = t.dump_table("api_tokens").await;
        assert!(
            !dump.contains(&token[4..]),
            "plaintext token stored: {dump}"
        );
        use sha2::Digest as _;
        let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        assert!(dump.contains(&hash), "{dump}");
        // Guesses that share a long prefix with the real token, differ in the last character,
        // are the hash itself, or are empty, all fail.
        let mut near = token.clone();
        let last = near.pop().unwrap();
        near.push(if last == '0' { '1' } else { '0' });
        for guess in [
            near.as_str(),
            &token[..token.len() - 1],
            hash.as_str(),
            "",
            "cst_",
            "' OR '1'='1",
        ] {
            assert!(
                s.authenticate_token(guess, 2).await.unwrap().is_none(),
                "{guess:?} accepted"
            );
        }
        assert!(s.authenticate_token(&token, 2).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_are_single_use_bound_to_the_device_and_expire() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        let n1 = s.create_nonce("dev-1", 1000, 60).await.unwrap();
        let n2 = s.create_nonce("dev-1", 1000, 60).await.unwrap();
        assert_ne!(n1, n2, "fresh every time");
        s.consume_nonce("dev-1", &n1, 1030).await.unwrap();
        assert_eq!(
            s.consume_nonce("dev-1", &n1, 1030).await,
            Err(StoreError::NonceUnknown),
            "replay refused"
        );
        assert_eq!(
            s.consume_nonce("dev-1", &n2, 1061).await,
            Err(StoreError::NonceExpired)
        );
        assert_eq!(
            s.consume_nonce("dev-1", &n2, 1030).await,
            Err(StoreError::NonceUnknown),
            "used up by the failed try"
        );

        let n3 = s.create_nonce("dev-1", 1000, 60).await.unwrap();
        assert_eq!(
            s.consume_nonce("dev-2", &n3, 1001).await,
            Err(StoreError::NonceWrongDevice)
        );
        assert_eq!(
            s.consume_nonce("dev-1", &n3, 1001).await,
            Err(StoreError::NonceUnknown),
            "burnt by the wrong device"
        );
        assert_eq!(
            s.consume_nonce("dev-1", &[0u8; 32], 1001).await,
            Err(StoreError::NonceUnknown)
        );

        s.create_nonce("dev-1", 1000, 10).await.unwrap();
        let keep = s.create_nonce("dev-1", 1000, 500).await.unwrap();
        assert_eq!(s.purge_expired_nonces(1100).await.unwrap(), 1);
        s.consume_nonce("dev-1", &keep, 1100).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_concurrent_replay_of_one_nonce_succeeds_once() {
    each_backend(async |t: &TestStore| {
        let nonce = t.store.create_nonce("dev-1", 0, 600).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = t.reopen().await;
            tasks.push(tokio::spawn(async move {
                s.consume_nonce("dev-1", &nonce, 1).await.is_ok()
            }));
        }
        let mut ok = 0;
        for task in tasks {
            ok += usize::from(task.await.unwrap());
        }
        assert_eq!(ok, 1, "{}", t.backend);
    })
    .await;
}
