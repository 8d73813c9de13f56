//! `castellan release`: the release manager's tool. Registers the release trust anchor, builds
//! a release from an image signed by the build (its SUIT envelope signed with the release key,
//! from a PEM file or a PKCS#11 token, here on the release manager's machine: the server never
//! holds the key), uploads it, lists and shows releases.
//!
//! ```text
//! castellan release trust  --token-file admin.token --key release.key      (once, admin)
//! castellan release create --token-file rm.token --image app-2.0.0.bin --class sensor-v1 \
//!     --key release.key        (or --pkcs11-module … --pkcs11-token … --pkcs11-key …)
//! castellan release list | show sensor-v1-2
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_agent::FleetApi;
use castellan_release::{ReleaseKey, ReleaseKeySource, ReleaseSpec, build_envelope, image_facts};
use castellan_server::protocol::update::{ReleaseJson, ReleaseKeyRequest, ReleaseRequest};
use clap::{Args, Subcommand};

use super::fleet_api::{ApiArgs, block_on};
use super::read_file;

/// `castellan release …`
#[derive(Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Register the release key's public key as the fleet's release trust anchor (admin, once).
    Trust(TrustArgs),
    /// Build, sign and upload a release of an image signed by the build (release-manager).
    Create(CreateArgs),
    /// List the releases.
    List(ListArgs),
    /// Show one release.
    Show(ShowArgs),
}

/// Where the release key is: a PEM file, or a PKCS#11 token.
#[derive(Args, Clone, Debug)]
pub(crate) struct KeyArgs {
    /// The release key, PKCS#8 PEM (`castellan keygen -t ecdsa-p256 -k FILE`).
    #[arg(long, value_name = "FILE", required_unless_present = "pkcs11_module")]
    key: Option<PathBuf>,
    /// PKCS#11 module holding the release key (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, value_name = "SO", conflicts_with = "key", requires_all = ["pkcs11_token", "pkcs11_key"])]
    pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    #[arg(long, value_name = "LABEL")]
    pkcs11_token: Option<String>,
    /// Label of the key inside the token.
    #[arg(long, value_name = "LABEL")]
    pkcs11_key: Option<String>,
    /// Environment variable holding the token's user PIN (never on the command line).
    #[arg(long, value_name = "VAR", default_value = "CASTELLAN_PKCS11_PIN")]
    pkcs11_pin_env: String,
}

impl KeyArgs {
    pub(crate) fn load(&self) -> anyhow::Result<ReleaseKey> {
        let source = match (&self.key, &self.pkcs11_module) {
            (Some(path), _) => ReleaseKeySource::File(path.clone()),
            (None, Some(module)) => ReleaseKeySource::Pkcs11 {
                module: module.clone(),
                token_label: self.pkcs11_token.clone().unwrap_or_default(),
                pin: std::env::var(&self.pkcs11_pin_env).with_context(|| {
                    format!(
                        "set the token's user PIN in ${} (or name another variable with \
                         --pkcs11-pin-env)",
                        self.pkcs11_pin_env
                    )
                })?,
                key_label: self.pkcs11_key.clone().unwrap_or_default(),
            },
            (None, None) => bail!("name the release key: --key FILE or --pkcs11-module …"),
        };
        Ok(ReleaseKey::load(&source)?)
    }
}

/// Arguments of `castellan release trust`.
#[derive(Args)]
pub(crate) struct TrustArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    key: KeyArgs,
}

/// Arguments of `castellan release create`.
#[derive(Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// The MCUboot image, signed by the build with the image key (PUBKEY TLV).
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    /// The device class the release is for.
    #[arg(long = "class", default_value = "sensor-v1")]
    device_class: String,
    /// Manifest sequence number (default: one above the class's latest release).
    #[arg(long)]
    sequence: Option<u64>,
    /// Release notes (also the manifest's description).
    #[arg(long)]
    notes: Option<String>,
    /// Days until the release expires: devices refuse it afterwards (freeze protection).
    #[arg(long, default_value_t = 90)]
    expires_in_days: u64,
    /// Write the signed SUIT envelope here as well.
    #[arg(long, value_name = "FILE")]
    envelope_out: Option<PathBuf>,
}

/// Arguments of `castellan release list`.
#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `castellan release show`.
#[derive(Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The release id (`<class>-<sequence>`).
    release_id: String,
}

/// Run a release subcommand.
pub(crate) fn run(c: ReleaseCommand) -> anyhow::Result<ExitCode> {
    match c {
        ReleaseCommand::Trust(a) => {
            let key = a.key.load()?;
            let api = a.api.client()?;
            let body = ReleaseKeyRequest {
                public_key: castellan_release::trust_anchor_hex(key.signer()),
            };
            let _: serde_json::Value = block_on(api.put("/api/v1/release-key", &body))??;
            println!(
                "release trust anchor registered: {} ({})",
                body.public_key,
                key.signer().describe()
            );
            println!("devices provisioned from now on accept manifests signed by this key only");
            Ok(ExitCode::SUCCESS)
        }
        ReleaseCommand::Create(a) => {
            let release = block_on(create(&a.api.client()?, &a))??;
            print_release(&release);
            Ok(ExitCode::SUCCESS)
        }
        ReleaseCommand::List(a) => {
            let releases: Vec<ReleaseJson> = block_on(a.api.client()?.get("/api/v1/releases"))??;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&releases)?);
            } else {
                println!(
                    "{:<22} {:<12} {:<12} {:>8} {:>8}  created by",
                    "release", "class", "version", "sequence", "counter"
                );
                for r in releases {
                    println!(
                        "{:<22} {:<12} {:<12} {:>8} {:>8}  {}",
                        r.release_id,
                        r.device_class,
                        r.version,
                        r.sequence,
                        r.security_counter,
                        r.created_by
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ReleaseCommand::Show(a) => {
            let r: ReleaseJson = block_on(
                a.api
                    .client()?
                    .get(&format!("/api/v1/releases/{}", a.release_id)),
            )??;
            print_release(&r);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The inputs of [`upload_release`].
pub(crate) struct NewRelease<'a> {
    pub image: &'a [u8],
    pub device_class: &'a str,
    pub sequence: Option<u64>,
    pub notes: Option<&'a str>,
    /// Unix seconds; `None`: [`castellan_release::default_expiry`].
    pub expires_unix: Option<u64>,
}

/// Builds the envelope for `new.image`, signs it with `key` and uploads the release; returns
/// the server's record and the envelope.
pub(crate) async fn upload_release(
    api: &FleetApi,
    key: &ReleaseKey,
    new: &NewRelease<'_>,
) -> anyhow::Result<(ReleaseJson, Vec<u8>)> {
    let facts = image_facts(new.image).context("the image cannot be released")?;
    let sequence = match new.sequence {
        Some(s) => s,
        None => next_sequence(api, new.device_class).await?,
    };
    let spec = ReleaseSpec {
        device_class: new.device_class,
        sequence,
        vendor: castellan_suit::ids::DEFAULT_VENDOR,
        description: new.notes,
        expires_unix: Some(
            new.expires_unix
                .unwrap_or_else(castellan_release::default_expiry),
        ),
    };
    let envelope = build_envelope(new.image, &spec, key.signer())?;
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let req = ReleaseRequest {
        device_class: new.device_class.to_string(),
        version: release_version(&facts.version),
        image: b64.encode(new.image),
        manifest: b64.encode(&envelope),
        notes: new.notes.map(str::to_string),
    };
    let release: ReleaseJson = api
        .post("/api/v1/releases", &req)
        .await
        .context("the server refused the release")?;
    Ok((release, envelope))
}

/// The version as the fleet shows it (and devices report it in telemetry): `major.minor.revision`,
/// with `+build` only when the build number is set.
pub(crate) fn release_version(v: &castellan_image::Version) -> String {
    if v.build == 0 {
        format!("{}.{}.{}", v.major, v.minor, v.revision)
    } else {
        v.to_string()
    }
}

/// One above the highest sequence of the class's releases.
pub(crate) async fn next_sequence(api: &FleetApi, device_class: &str) -> anyhow::Result<u64> {
    let releases: Vec<ReleaseJson> = api.get("/api/v1/releases").await?;
    Ok(releases
        .iter()
        .filter(|r| r.device_class == device_class)
        .map(|r| r.sequence)
        .max()
        .unwrap_or(0)
        + 1)
}

async fn create(api: &FleetApi, a: &CreateArgs) -> anyhow::Result<ReleaseJson> {
    let image = read_file(&a.image)?;
    let key = a.key.load()?;
    eprintln!(
        "signing the manifest with {} and uploading {} bytes …",
        key.signer().describe(),
        image.len()
    );
    let (release, envelope) = upload_release(
        api,
        &key,
        &NewRelease {
            image: &image,
            device_class: &a.device_class,
            sequence: a.sequence,
            notes: a.notes.as_deref(),
            expires_unix: Some(now_unix() + a.expires_in_days.max(1) * 24 * 3600),
        },
    )
    .await?;
    if let Some(out) = &a.envelope_out {
        super::write_file(out, &envelope)?;
    }
    Ok(release)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn print_release(r: &ReleaseJson) {
    println!("release:          {}", r.release_id);
    println!("class:            {}", r.device_class);
    println!("version:          {}", r.version);
    println!("sequence:         {}", r.sequence);
    println!("security counter: {}", r.security_counter);
    println!("image:            {} bytes", r.image_size);
    println!("signer id:        {}", r.signer_id);
    println!("measurement:      {}", r.measurement.digest);
    println!("created by:       {}", r.created_by);
}
