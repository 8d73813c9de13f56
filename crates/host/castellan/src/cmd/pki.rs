//! `castellan pki`: the offline root and the issuing CAs. Run `init`, `rotate`, `retire`,
//! `issue-service` and `crl` on a machine the fleet service never sees; `handover` writes what
//! the service uses online into its state directory (copy it there by whatever means the
//! site trusts); `status` shows either side.
//!
//! ```text
//!  offline machine                                   service machine
//!  pki init --offline O ─▶ root + 4 CAs (keys)
//!  pki handover --offline O --state-dir S ─────────▶ S/pki: certificates, operational key
//!  pki rotate --offline O ─▶ new operational CA ──▶ handover again, restart the service
//!  pki retire --offline O --serial X ─▶ root CRL ─▶ handover again, restart the service
//!                                                   pki request (key made in the token) ─┐
//!  pki sign-ca --offline O --csr F ◀──────────────── operational-ca.csr.pem ◀─────────────┘
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_pki::{CaKind, KeyBackend, Pki, ceremony};
use castellan_server::DEFAULT_STATE_DIR;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// `castellan pki …`
#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the root, manufacturer, operational and service CAs, keys included, in an offline
    /// directory (idempotent: an existing hierarchy is kept).
    Init(OfflineArgs),
    /// Write into a service's state directory what it uses online: every CA certificate, the
    /// operational CA's key, and the manufacturer CA's key only with --manufacturer-key.
    Handover(HandoverArgs),
    /// Show the CAs of an offline directory or of a service's state directory, with their keys.
    Status(StatusArgs),
    /// Rotate the operational CA: the root signs a new one; the old one stays trusted for the
    /// LDevIDs it issued until retired. Hand over again and restart the service.
    Rotate(OfflineArgs),
    /// Retire an operational CA rotated out: no longer handed over, listed in the root's CRL.
    Retire(RetireArgs),
    /// Issue a service identity (svc:<name>, the fleet-wide MQTT role) from the service CA.
    IssueService(IssueServiceArgs),
    /// Sign the root's CRL again (the retired issuing CAs; valid one year).
    Crl(OfflineArgs),
    /// On the service's machine: make the operational CA's key in its PKCS#11 token and write
    /// a certificate request for the offline root (`pki/operational-ca.csr.pem`).
    Request(RequestArgs),
    /// On the offline machine: the root signs the service's operational CA request; it becomes
    /// the current operational CA (the previous one stays trusted until retired).
    SignCa(SignCaArgs),
}

/// Arguments of `castellan pki request`.
#[derive(Args)]
pub(crate) struct RequestArgs {
    /// The service's state directory (`castellan serve --state-dir`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(flatten)]
    pkcs11: super::serve::Pkcs11Args,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `castellan pki sign-ca`.
#[derive(Args)]
pub(crate) struct SignCaArgs {
    #[command(flatten)]
    from: OfflineArgs,
    /// The request `castellan pki request` wrote.
    #[arg(long, value_name = "FILE")]
    csr: PathBuf,
}

/// The offline directory, and output options.
#[derive(Args)]
pub(crate) struct OfflineArgs {
    /// The offline PKI directory (root and issuing CA keys): never on the service's machine.
    #[arg(long, value_name = "DIR")]
    offline: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `castellan pki handover`.
#[derive(Args)]
pub(crate) struct HandoverArgs {
    #[command(flatten)]
    from: OfflineArgs,
    /// The service's state directory (`castellan serve --state-dir`); its `pki/` is written.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Also hand over the manufacturer CA's key: this service runs the factory (issues
    /// IDevIDs). Leave it out when a factory holds its own.
    #[arg(long)]
    manufacturer_key: bool,
}

/// Arguments of `castellan pki status`.
#[derive(Args)]
pub(crate) struct StatusArgs {
    /// An offline PKI directory.
    #[arg(long, value_name = "DIR", conflicts_with = "state_dir")]
    offline: Option<PathBuf>,
    /// A service's state directory (its `pki/`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `castellan pki retire`.
#[derive(Args)]
pub(crate) struct RetireArgs {
    #[command(flatten)]
    from: OfflineArgs,
    /// The serial (hex) of the operational CA to retire, as `pki rotate` or `pki status` shows.
    #[arg(long, value_name = "HEX")]
    serial: String,
}

/// Arguments of `castellan pki issue-service`.
#[derive(Args)]
pub(crate) struct IssueServiceArgs {
    #[command(flatten)]
    from: OfflineArgs,
    /// The service's name: the certificate's CN is svc:<name>, its MQTT client id.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Where to write <name>.pem (certificate and chain) and <name>.key (0600).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Run a pki subcommand.
pub(crate) fn run(c: PkiCommand) -> anyhow::Result<ExitCode> {
    match c {
        PkiCommand::Init(a) => init(&a),
        PkiCommand::Handover(a) => handover(&a),
        PkiCommand::Status(a) => status(&a),
        PkiCommand::Rotate(a) => rotate(&a),
        PkiCommand::Retire(a) => retire(&a),
        PkiCommand::IssueService(a) => issue_service(&a),
        PkiCommand::Crl(a) => crl(&a),
        PkiCommand::Request(a) => request(&a),
        PkiCommand::SignCa(a) => sign_ca(&a),
    }
}

fn request(a: &RequestArgs) -> anyhow::Result<ExitCode> {
    let Some(token) = a.pkcs11.open()? else {
        bail!(
            "give the token that will hold the operational CA's key (--pkcs11-module, \
             --pkcs11-token); with key files, `castellan pki handover` carries the key instead"
        );
    };
    let label = format!("castellan-{}-ca", CaKind::Operational.name());
    let key = token
        .key_or_generate(&label)
        .with_context(|| format!("cannot make key {label:?} in the token"))?;
    let path = ceremony::request_operational(&a.state_dir.join("pki"), &key)
        .context("cannot write the operational CA's request")?;
    print_result(a.json, json!({"csr": path, "key": label}), || {
        println!(
            "key {label:?} is in the token; request written to {}",
            path.display()
        );
        println!(
            "next, offline: castellan pki sign-ca --offline DIR --csr {}; then castellan pki \
             handover --offline DIR --state-dir {}",
            path.display(),
            a.state_dir.display()
        );
    });
    Ok(ExitCode::SUCCESS)
}

fn sign_ca(a: &SignCaArgs) -> anyhow::Result<ExitCode> {
    let csr = super::read_text(&a.csr)?;
    let (old, new) = ceremony::sign_operational_csr(&a.from.offline, &csr)
        .with_context(|| format!("cannot sign the request {}", a.csr.display()))?;
    print_result(
        a.from.json,
        json!({"previous": old, "current": new}),
        || {
            println!(
                "operational CA {new} signed by the root (its key stays in the service's token)"
            );
            println!(
                "the previous one ({old}) stays trusted until `castellan pki retire`; next: \
             castellan pki handover --offline {} --state-dir DIR",
                a.from.offline.display()
            );
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn init(a: &OfflineArgs) -> anyhow::Result<ExitCode> {
    let existed = Pki::exists(&a.offline);
    let pki = Pki::init(&a.offline, KeyBackend::Files).with_context(|| {
        format!(
            "cannot create the offline PKI in {} (an existing hierarchy is opened, never replaced)",
            a.offline.display()
        )
    })?;
    let summary = describe(&pki);
    print_result(
        a.json,
        json!({"offline": a.offline, "created": !existed, "cas": summary}),
        || {
            println!(
                "{} the offline PKI in {}",
                if existed { "opened" } else { "created" },
                a.offline.display()
            );
            print_cas(&summary);
            println!(
                "next: castellan pki handover --offline {} --state-dir DIR [--manufacturer-key]",
                a.offline.display()
            );
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn handover(a: &HandoverArgs) -> anyhow::Result<ExitCode> {
    let service_dir = a.state_dir.join("pki");
    let report = ceremony::hand_over(&a.from.offline, &service_dir, a.manufacturer_key)
        .with_context(|| {
            format!(
                "cannot hand the PKI of {} over to {}",
                a.from.offline.display(),
                service_dir.display()
            )
        })?;
    let value = json!({
        "state_dir": a.state_dir,
        "written": report.written,
        "removed": report.removed,
        "manufacturer_key": a.manufacturer_key,
    });
    print_result(a.from.json, value, || {
        println!("handed over to {}:", service_dir.display());
        for path in &report.written {
            println!("  wrote   {}", path.display());
        }
        for path in &report.removed {
            println!("  removed {}", path.display());
        }
        println!(
            "the root's and the service CA's keys stay in {}; restart `castellan serve --state-dir {}`",
            a.from.offline.display(),
            a.state_dir.display()
        );
    });
    Ok(ExitCode::SUCCESS)
}

fn status(a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let dir = match (&a.offline, &a.state_dir) {
        (Some(offline), _) => offline.clone(),
        (None, Some(state)) => state.join("pki"),
        (None, None) => bail!("give --offline DIR or --state-dir DIR"),
    };
    let pki = Pki::inspect(&dir).with_context(|| format!("no usable PKI in {}", dir.display()))?;
    let summary = describe(&pki);
    let root_key = Pki::root_key_location(&dir, &KeyBackend::Files);
    print_result(
        a.json,
        json!({"dir": dir, "root_key": root_key, "cas": summary}),
        || {
            println!("PKI in {}", dir.display());
            print_cas(&summary);
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn rotate(a: &OfflineArgs) -> anyhow::Result<ExitCode> {
    let (old, new) = ceremony::rotate_operational(&a.offline).with_context(|| {
        format!(
            "cannot rotate the operational CA in {}",
            a.offline.display()
        )
    })?;
    print_result(a.json, json!({"previous": old, "current": new}), || {
        println!("operational CA rotated: {old} -> {new}");
        println!(
            "the old CA stays trusted for its LDevIDs; next: castellan pki handover --offline {} \
             --state-dir DIR, restart the service; once every device renewed: castellan pki \
             retire --offline {} --serial {old}",
            a.offline.display(),
            a.offline.display()
        );
    });
    Ok(ExitCode::SUCCESS)
}

fn retire(a: &RetireArgs) -> anyhow::Result<ExitCode> {
    let crl = ceremony::retire(&a.from.offline, &a.serial).with_context(|| {
        format!(
            "cannot retire operational CA {} (see `castellan pki status --offline {}`)",
            a.serial,
            a.from.offline.display()
        )
    })?;
    print_result(
        a.from.json,
        json!({"retired": a.serial, "root_crl": crl}),
        || {
            println!(
                "operational CA {} retired; root CRL signed: {}",
                a.serial,
                crl.display()
            );
            println!("next: castellan pki handover again, and restart the service");
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn issue_service(a: &IssueServiceArgs) -> anyhow::Result<ExitCode> {
    let pki = ceremony::open_offline(&a.from.offline)?;
    let creds = pki
        .issue_service_client_cert(&a.name)
        .with_context(|| format!("cannot issue service identity svc:{}", a.name))?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let cert = a.out.join(format!("{}.pem", a.name));
    let key = a.out.join(format!("{}.key", a.name));
    super::write_file(
        &cert,
        format!("{}{}", creds.certificate.pem, creds.chain_pem).as_bytes(),
    )?;
    super::keys::write_private(&key, creds.key_pem.as_bytes())?;
    let serial = creds.certificate.serial_hex();
    print_result(
        a.from.json,
        json!({"client_id": format!("svc:{}", a.name), "certificate": cert, "key": key, "serial": serial}),
        || {
            println!(
                "service identity svc:{} (serial {serial}): {} {}",
                a.name,
                cert.display(),
                key.display()
            );
        },
    );
    Ok(ExitCode::SUCCESS)
}

fn crl(a: &OfflineArgs) -> anyhow::Result<ExitCode> {
    let path = ceremony::sign_root_crl(&a.offline).context("cannot sign the root's CRL")?;
    print_result(a.json, json!({"root_crl": path}), || {
        println!("root CRL signed: {}", path.display());
    });
    Ok(ExitCode::SUCCESS)
}

/// Each CA: kind, serial, validity end, where its key is; then the operational CAs rotated out.
fn describe(pki: &Pki) -> Vec<Value> {
    let mut cas: Vec<Value> = pki
        .key_locations()
        .into_iter()
        .map(|(kind, key)| {
            let cert = pki.ca_certificate(kind);
            json!({
                "ca": kind.name(),
                "serial": hex::encode(&cert.serial),
                "not_after": cert.not_after,
                "key": if pki.holds_key(kind) { Value::from(key) } else { Value::Null },
            })
        })
        .collect();
    for previous in pki.previous_operational_cas() {
        cas.push(json!({
            "ca": format!("{} (rotated out)", CaKind::Operational.name()),
            "serial": hex::encode(&previous.serial),
            "not_after": previous.not_after,
            "key": Value::Null,
        }));
    }
    cas
}

fn print_cas(cas: &[Value]) {
    for ca in cas {
        println!(
            "  {:<28} serial {}  key: {}",
            ca["ca"].as_str().unwrap_or("?"),
            ca["serial"].as_str().unwrap_or("?"),
            ca["key"].as_str().unwrap_or("not held here")
        );
    }
}

fn print_result(json: bool, value: Value, text: impl FnOnce()) {
    if json {
        println!("{value}");
    } else {
        text();
    }
}
