//! The end of `castellan demo` in a terminal: a one-time console login (an admin account
//! `demo` with a random password, valid while this run's fleet service runs), the console's
//! URL, and the service kept running until Ctrl-C so that a newcomer can look at what the demo
//! did in a browser. The account is disabled and its sessions ended when the demo stops.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use castellan_server::ServerHandle;
use castellan_store::{AuditRecord, Decision, Role, unix_now};

/// The one-time account's name.
const DEMO_OPERATOR: &str = "demo";

/// Whether the demo should wait for Ctrl-C after its steps (a terminal, and not `--no-wait`).
pub(crate) fn should_wait(no_wait: bool) -> bool {
    !no_wait && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Create the one-time login, print it with the console's URL, and wait for Ctrl-C.
pub(crate) async fn serve_until_ctrl_c(server: &ServerHandle) -> anyhow::Result<()> {
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let password = hex::encode(secret);
    let phc = castellan_console::hash_password(&password)?;
    let store = server.store();
    let now = unix_now();
    if store.operator(DEMO_OPERATOR).await?.is_none() {
        store
            .create_operator(DEMO_OPERATOR, Role::Admin, now)
            .await?;
    }
    store.set_operator_disabled(DEMO_OPERATOR, false).await?;
    store
        .set_operator_password(DEMO_OPERATOR, &phc, now)
        .await
        .context("cannot set the demo's console password")?;
    audit(
        server,
        "demo.console.login_created",
        "one-time console login for this run",
    )
    .await;
    println!("\nThe fleet service keeps running: look at what the demo did in the console.");
    println!("  console:   {}/console/", server.api_url());
    println!("  operator:  {DEMO_OPERATOR}");
    println!("  password:  {password}   (this run only)");
    println!(
        "  the browser warns about the certificate: the demo's own CA issued it ({})",
        server.paths().ca_bundle.display()
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    store.set_operator_disabled(DEMO_OPERATOR, true).await?;
    store.end_console_sessions_of(DEMO_OPERATOR).await?;
    audit(server, "demo.console.login_disabled", "the demo stopped").await;
    Ok(())
}

async fn audit(server: &ServerHandle, action: &str, reason: &str) {
    let rec = AuditRecord {
        actor: "demo",
        action,
        target: DEMO_OPERATOR,
        decision: Decision::Allowed,
        reason,
        code: None,
    };
    if let Err(e) = server.store().append_audit(&rec, unix_now()).await {
        eprintln!("castellan demo: audit log: {e}");
    }
}
