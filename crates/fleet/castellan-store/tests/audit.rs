//! The hash-chained audit log on SQLite and PostgreSQL: appends chain, concurrent appends never
//! fork the chain, and every way an attacker with database access can tamper with it is
//! detected and named (modified, removed, reordered, truncated, rewritten).

use castellan_store::testing::{TestStore, each_backend};
use castellan_store::{AuditRecord, AuditViolation, Decision, Store, StoreError};

fn rec<'a>(actor: &'a str, action: &'a str, target: &'a str) -> AuditRecord<'a> {
    AuditRecord {
        actor,
        action,
        target,
        decision: Decision::Allowed,
        reason: "ok",
        code: None,
    }
}

async fn fill(store: &Store, n: u64) {
    for i in 1..=n {
        let target = format!("dev-{i}");
        let decision = if i % 3 == 0 {
            Decision::Refused
        } else {
            Decision::Allowed
        };
        let e = store
            .append_audit(
                &AuditRecord {
                    actor: "alice",
                    action: "device.quarantine",
                    target: &target,
                    decision,
                    reason: "test",
                    code: None,
                },
                1_700_000_000 + i as i64,
            )
            .await
            .unwrap();
        assert_eq!(e.seq, i);
    }
}

fn violation(r: Result<castellan_store::AuditReport, StoreError>) -> AuditViolation {
    match r {
        Err(StoreError::AuditTampered(v)) => v,
        other => panic!("expected tampering to be detected, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_chain_and_verify() {
    each_backend(async |t: &TestStore| {
        let s = &t.store;
        assert_eq!(s.verify_audit().await.unwrap().count, 0);
        let a = s
            .append_audit(&rec("alice", "login", "api"), 10)
            .await
            .unwrap();
        let b = s
            .append_audit(
                &AuditRecord {
                    actor: "bob",
                    action: "device.decommission",
                    target: "dev-1",
                    decision: Decision::Refused,
                    reason: "role auditor may not decommission",
                    code: None,
                },
                11,
            )
            .await
            .unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, [0u8; 32]);
        assert_eq!(b.prev_hash, a.hash);
        let report = s.verify_audit().await.unwrap();
        assert_eq!(report.count, 2);
        assert_eq!(report.head_hash, b.hash);
        assert!(report.anchor_checked, "{}", t.backend);
        let entries = s.audit_entries(0, 10).await.unwrap();
        assert_eq!(entries, vec![a, b.clone()]);
        assert_eq!(entries[1].reason, "role auditor may not decommission");
        assert_eq!(entries[1].decision, Decision::Refused);
        assert_eq!(s.audit_entries(1, 10).await.unwrap(), vec![b]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_modified_audit_entry_detected() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 6).await;
        t.raw_execute("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 4")
            .await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::Modified { seq: 4 },
            "{}",
            t.backend
        );
        let msg = StoreError::AuditTampered(AuditViolation::Modified { seq: 4 }).to_string();
        assert!(msg.contains("entry 4 was modified"), "{msg}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_a_refusal_code_is_kept_and_covered_by_the_hash() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 2).await;
        let coded = t
            .store
            .append_audit(
                &AuditRecord {
                    actor: "CSTL-0001",
                    action: "onboard",
                    target: "CSTL-0001",
                    decision: Decision::Refused,
                    reason: "nonce refused: unknown nonce",
                    code: Some("attestation.nonce_mismatch"),
                },
                20,
            )
            .await
            .unwrap();
        t.store
            .append_audit(&rec("system", "server.stop", "state"), 21)
            .await
            .unwrap();
        let entries = t.store.audit_entries(0, 10).await.unwrap();
        assert_eq!(entries.get(2), Some(&coded));
        assert_eq!(coded.code.as_deref(), Some("attestation.nonce_mismatch"));
        assert_eq!(entries.iter().filter(|e| e.code.is_some()).count(), 1);
        assert_eq!(t.store.verify_audit().await.unwrap().count, 4);
        // Dropping or changing the code is tampering like changing the reason.
        t.raw_execute("UPDATE audit_log SET code = NULL WHERE seq = 3")
            .await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::Modified { seq: 3 },
            "{}",
            t.backend
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_modified_decision_detected() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 3).await;
        // Turn a refusal into an approval.
        t.raw_execute("UPDATE audit_log SET decision = 'allowed' WHERE seq = 3")
            .await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::Modified { seq: 3 }
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_removed_audit_entry_detected() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 6).await;
        t.raw_execute("DELETE FROM audit_log WHERE seq = 3").await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::Missing { first: 3, last: 3 }
        );
        t.raw_execute("DELETE FROM audit_log WHERE seq = 1").await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::Missing { first: 1, last: 1 }
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_removed_audit_entry_with_renumbering_detected() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 5).await;
        // Remove entry 2 and shift the later ones down to hide the gap.
        t.raw_execute(
            "DELETE FROM audit_log WHERE seq = 2; UPDATE audit_log SET seq = seq + 100 WHERE seq > 2; \
             UPDATE audit_log SET seq = seq - 101 WHERE seq > 100;",
        )
        .await;
        // Entry 3 now sits at 2: its hash was computed for position 3.
        assert_eq!(violation(t.store.verify_audit().await), AuditViolation::Reordered { seq: 2, original_seq: 3 });
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_reordered_audit_entries_detected() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 6).await;
        // Swap the contents of entries 3 and 4 (sequence numbers stay in place).
        t.raw_execute(
            "UPDATE audit_log SET seq = 1000 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE seq = 1000;",
        )
        .await;
        assert_eq!(violation(t.store.verify_audit().await), AuditViolation::Reordered { seq: 3, original_seq: 4 });
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_truncated_audit_tail_detected_by_anchor() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 6).await;
        t.raw_execute("DELETE FROM audit_log WHERE seq >= 5").await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::Truncated {
                anchored_seq: 6,
                head_seq: 4
            }
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_rehashed_chain_detected_by_anchor() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 4).await;
        // The attacker rewrites the whole log consistently in another database, then copies it
        // over: every hash is valid, only the anchor knows the real head.
        let forged = TestStore::sqlite().await;
        for i in 1..=4 {
            forged.store.append_audit(&rec("mallory", "nothing", "none"), i).await.unwrap();
        }
        let rows = forged.store.audit_entries(0, 10).await.unwrap();
        let mut sql = String::from("DELETE FROM audit_log;");
        for e in rows {
            sql.push_str(&format!(
                "INSERT INTO audit_log (seq, at, actor, action, target, decision, reason, prev_hash, \
                 hash) VALUES ({}, {}, '{}', '{}', '{}', 'allowed', '{}', '{}', '{}');",
                e.seq,
                e.at,
                e.actor,
                e.action,
                e.target,
                e.reason,
                hex(&e.prev_hash),
                hex(&e.hash)
            ));
        }
        t.raw_execute(&sql).await;
        assert_eq!(violation(t.store.verify_audit().await), AuditViolation::AnchorMismatch { seq: 4 });
        // Deleting the anchor too is noticed.
        std::fs::remove_file(t.store.anchor_path().unwrap()).unwrap();
        assert_eq!(violation(t.store.verify_audit().await), AuditViolation::AnchorMissing);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_modified_entry_rehashed_breaks_the_next_link() {
    each_backend(async |t: &TestStore| {
        fill(&t.store, 4).await;
        // Rewrite entry 2 with a correct hash for its new content: entry 3 no longer links.
        let e2 = t.store.audit_entries(1, 1).await.unwrap().remove(0);
        let forged = TestStore::sqlite().await;
        // Recreate the same prefix so that the forged entry 2 has the right prev_hash.
        let e1 = t.store.audit_entries(0, 1).await.unwrap().remove(0);
        forged
            .store
            .append_audit(
                &AuditRecord {
                    actor: &e1.actor,
                    action: &e1.action,
                    target: &e1.target,
                    decision: e1.decision,
                    reason: &e1.reason,
                    code: None,
                },
                e1.at,
            )
            .await
            .unwrap();
        let f2 = forged
            .store
            .append_audit(
                &AuditRecord {
                    actor: &e2.actor,
                    action: &e2.action,
                    target: &e2.target,
                    decision: e2.decision,
                    reason: "covered up",
                    code: None,
                },
                e2.at,
            )
            .await
            .unwrap();
        assert_eq!(f2.prev_hash, e2.prev_hash);
        t.raw_execute(&format!(
            "UPDATE audit_log SET reason = 'covered up', hash = '{}' WHERE seq = 2",
            hex(&f2.hash)
        ))
        .await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::BrokenLink { seq: 3 }
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_never_fork_the_chain() {
    each_backend(async |t: &TestStore| {
        let mut tasks = Vec::new();
        for w in 0..4 {
            // Separate Store handles on PostgreSQL are separate pools: as several service
            // instances would be.
            let store = if w % 2 == 0 {
                t.store.clone()
            } else {
                t.reopen().await
            };
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .append_audit(&rec(&format!("writer-{w}"), "append", &format!("{i}")), i)
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let report = t.store.verify_audit().await.unwrap();
        assert_eq!(report.count, 100, "{}", t.backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_with_separators_cannot_be_shifted_between_fields() {
    each_backend(async |t: &TestStore| {
        // Length-prefixed encoding: moving text between fields changes the hash.
        let a = t
            .store
            .append_audit(&rec("al", "ice", "x"), 1)
            .await
            .unwrap();
        let t2 = TestStore::sqlite().await;
        let b = t2
            .store
            .append_audit(&rec("ali", "ce", "x"), 1)
            .await
            .unwrap();
        assert_ne!(a.hash, b.hash);
        t.raw_execute("UPDATE audit_log SET actor = 'ali', action = 'ce' WHERE seq = 1")
            .await;
        assert_eq!(
            violation(t.store.verify_audit().await),
            AuditViolation::Modified { seq: 1 }
        );
    })
    .await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
