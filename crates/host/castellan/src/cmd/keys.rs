//! `castellan keygen` and `castellan getpub`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_image::{KeyType, SigningKey, public_key_pem, public_spki_from_pem};
use clap::{Args, ValueEnum};

use super::{read_text, write_file};

/// Key types `keygen` can create (imgtool's names).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum KeyTypeArg {
    /// Ed25519 (deterministic signatures).
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
}

impl From<KeyTypeArg> for KeyType {
    fn from(k: KeyTypeArg) -> KeyType {
        match k {
            KeyTypeArg::Ed25519 => KeyType::Ed25519,
            KeyTypeArg::EcdsaP256 => KeyType::EcdsaP256,
            KeyTypeArg::EcdsaP384 => KeyType::EcdsaP384,
        }
    }
}

/// Arguments of `castellan keygen`.
#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// File to write the private key to (PKCS#8 PEM). Refuses to overwrite.
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    /// Key type.
    #[arg(short = 't', long = "type", value_enum, default_value = "ed25519")]
    key_type: KeyTypeArg,
    /// Overwrite an existing key file.
    #[arg(long)]
    force: bool,
}

/// Generate a key and write it as PKCS#8 PEM with owner-only permissions.
pub(crate) fn keygen(a: KeygenArgs) -> anyhow::Result<ExitCode> {
    if a.key.exists() && !a.force {
        bail!(
            "{} already exists; pass --force to overwrite it (the old key is lost)",
            a.key.display()
        );
    }
    let key = SigningKey::generate(a.key_type.into());
    let pem = key.to_pkcs8_pem()?;
    write_private(&a.key, pem.as_bytes())?;
    eprintln!("wrote {} key to {}", key.key_type(), a.key.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
pub(crate) fn write_private(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    write_file(path, data)
}

/// Output encodings of `getpub`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum PubEncoding {
    /// SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`).
    Pem,
    /// DER SubjectPublicKeyInfo bytes (needs --output).
    Raw,
}

/// Arguments of `castellan getpub`.
#[derive(Args)]
pub(crate) struct GetpubArgs {
    /// Private or public key file (PEM).
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    /// Output encoding.
    #[arg(short, long, value_enum, default_value = "pem")]
    encoding: PubEncoding,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Print or write the public key of a key file.
pub(crate) fn getpub(a: GetpubArgs) -> anyhow::Result<ExitCode> {
    let pem = read_text(&a.key)?;
    let der = public_spki_from_pem(&pem).with_context(|| format!("{}", a.key.display()))?;
    let out = match a.encoding {
        PubEncoding::Pem => public_key_pem(&der)?.into_bytes(),
        PubEncoding::Raw => der,
    };
    match (&a.output, a.encoding) {
        (Some(path), _) => write_file(path, &out)?,
        (None, PubEncoding::Pem) => print!("{}", String::from_utf8_lossy(&out)),
        (None, PubEncoding::Raw) => bail!("raw (DER) output needs --output FILE"),
    }
    Ok(ExitCode::SUCCESS)
}
