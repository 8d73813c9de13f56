//! `castellan image sign | verify | info`: MCUboot-compatible images, with imgtool's option
//! names so that imgtool users need not relearn anything.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use castellan_image::trailer::{FlagState, MagicState};
use castellan_image::{
    HashAlg, PublicKeyFormat, SignOptions, SigningKey, TrustedKey, Version, describe,
    header::FLAG_NAMES, public_spki_from_pem, sign_image, verify,
};
use clap::{Args, Subcommand, ValueEnum};

use super::args::{
    Dependencies, parse_dependencies, parse_erased, parse_u16, parse_u32, parse_version,
};
use super::{read_file, read_text, write_file};

/// `castellan image …`
#[derive(Subcommand)]
pub(crate) enum ImageCommand {
    /// Sign a raw binary into an MCUboot image (options as in `imgtool sign`).
    Sign(SignArgs),
    /// Verify an image: exit 0 when valid, 1 with a one-line reason when not.
    Verify(VerifyArgs),
    /// Print an image's header, TLVs and trailer state.
    Info(InfoArgs),
}

/// Run an image subcommand.
pub(crate) fn run(c: ImageCommand) -> anyhow::Result<ExitCode> {
    match c {
        ImageCommand::Sign(a) => sign(a),
        ImageCommand::Verify(a) => verify_cmd(a),
        ImageCommand::Info(a) => info(a),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KeyFormatArg {
    /// KEYHASH TLV: the hash of the public key.
    Hash,
    /// PUBKEY TLV: the whole public key.
    Full,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ShaArg {
    /// Choose from the key type, as imgtool does.
    Auto,
    /// SHA-256.
    #[value(name = "256")]
    S256,
    /// SHA-384.
    #[value(name = "384")]
    S384,
    /// SHA-512.
    #[value(name = "512")]
    S512,
}

/// Arguments of `castellan image sign`.
#[derive(Args)]
pub(crate) struct SignArgs {
    /// Private signing key (PKCS#8 PEM).
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    /// Image version, maj.min.rev+build (e.g. 1.2.3+4).
    #[arg(short, long, value_parser = parse_version)]
    version: Version,
    /// Header size; the payload starts at this offset.
    #[arg(short = 'H', long, value_parser = parse_u16, default_value = "0x20")]
    header_size: u16,
    /// Add the header in front of the input instead of expecting header-size zero bytes.
    #[arg(long)]
    pad_header: bool,
    /// Size of the slot the image goes into.
    #[arg(short = 'S', long, value_parser = parse_u32, default_value = "0")]
    slot_size: u32,
    /// Flash write alignment: 1, 2, 4, 8, 16 or 32.
    #[arg(long, value_parser = parse_u32, default_value = "1")]
    align: u32,
    /// Trailer field alignment (default: max(8, align)).
    #[arg(long, value_parser = parse_u32)]
    max_align: Option<u32>,
    /// Maximum number of sectors the swap status tracks.
    #[arg(short = 'M', long, value_parser = parse_u32, default_value = "128")]
    max_sectors: u32,
    /// Use the smaller overwrite-only trailer.
    #[arg(long)]
    overwrite_only: bool,
    /// Security counter in the protected TLVs: a number, or `auto` (from the version).
    #[arg(short = 's', long, value_name = "N|auto")]
    security_counter: Option<String>,
    /// Add a boot record TLV with this software type (e.g. SPE, NSPE; at most 12 characters).
    #[arg(long, value_name = "SW_TYPE")]
    boot_record: Option<String>,
    /// Dependencies, as imgtool writes them: "(1, 1.2.3+0)" or "(0,1.0.0), (1,2.0.0)".
    #[arg(short = 'd', long, value_parser = parse_dependencies)]
    dependencies: Option<Dependencies>,
    /// Pad the image to the slot size and write the trailer magic.
    #[arg(long)]
    pad: bool,
    /// Mark the image confirmed (image_ok); implies --pad.
    #[arg(long)]
    confirm: bool,
    /// How the image names its key.
    #[arg(long, value_enum, default_value = "hash")]
    public_key_format: KeyFormatArg,
    /// Load address (marks the image RAM-load).
    #[arg(short = 'L', long, value_parser = parse_u32, default_value = "0")]
    load_addr: u32,
    /// Value of erased flash: 0xff or 0.
    #[arg(short = 'R', long, value_parser = parse_erased, default_value = "0xff")]
    erased_val: u8,
    /// Hash algorithm.
    #[arg(long, value_enum, default_value = "auto")]
    sha: ShaArg,
    /// Raw binary to sign.
    infile: PathBuf,
    /// Signed image to write.
    outfile: PathBuf,
}

fn sign(a: SignArgs) -> anyhow::Result<ExitCode> {
    let pem = read_text(&a.key)?;
    let key = SigningKey::from_pkcs8_pem(&pem).with_context(|| format!("{}", a.key.display()))?;
    let security_counter = match a.security_counter.as_deref() {
        None => None,
        Some("auto") => Some(a.version.auto_security_counter()),
        Some(n) => Some(parse_u32(n).context("security counter")?),
    };
    let opts = SignOptions {
        version: a.version,
        header_size: a.header_size,
        pad_header: a.pad_header,
        slot_size: a.slot_size,
        align: a.align,
        max_align: a.max_align,
        max_sectors: a.max_sectors,
        overwrite_only: a.overwrite_only,
        security_counter,
        boot_record: a.boot_record,
        dependencies: a.dependencies.map(|d| d.0).unwrap_or_default(),
        pad: a.pad,
        confirm: a.confirm,
        public_key_format: match a.public_key_format {
            KeyFormatArg::Hash => PublicKeyFormat::Hash,
            KeyFormatArg::Full => PublicKeyFormat::Full,
        },
        load_addr: a.load_addr,
        erased_val: a.erased_val,
        hash: match a.sha {
            ShaArg::Auto => None,
            ShaArg::S256 => Some(HashAlg::Sha256),
            ShaArg::S384 => Some(HashAlg::Sha384),
            ShaArg::S512 => Some(HashAlg::Sha512),
        },
    };
    let input = read_file(&a.infile)?;
    let image = sign_image(&input, &key, &opts)
        .with_context(|| format!("cannot sign {}", a.infile.display()))?;
    write_file(&a.outfile, &image)?;
    eprintln!(
        "signed {} ({} bytes, version {}, {}) -> {}",
        a.infile.display(),
        input.len(),
        a.version,
        key.key_type(),
        a.outfile.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `castellan image verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// Trusted key: a public key PEM, or a private key PEM (its public half is used).
    #[arg(short, long, value_name = "FILE")]
    key: PathBuf,
    /// Image to verify.
    imgfile: PathBuf,
}

fn verify_cmd(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let pem = read_text(&a.key)?;
    let spki = public_spki_from_pem(&pem).with_context(|| format!("{}", a.key.display()))?;
    let bytes = read_file(&a.imgfile)?;
    match verify(&mut bytes.as_slice(), TrustedKey::Spki(&spki)) {
        Ok(v) => {
            println!(
                "{}: valid, version {}, {} signature, digest {}{}",
                a.imgfile.display(),
                v.version(),
                v.key_type,
                hex::encode(v.digest.as_bytes()),
                v.security_counter
                    .map(|c| format!(", security counter {c}"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}: invalid: {e}", a.imgfile.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Arguments of `castellan image info`.
#[derive(Args)]
pub(crate) struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Value of erased flash, to read the trailer: 0xff or 0.
    #[arg(short = 'R', long, value_parser = parse_erased, default_value = "0xff")]
    erased_val: u8,
    /// Image (or slot dump) to describe.
    imgfile: PathBuf,
}

fn info(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_file(&a.imgfile)?;
    let d = match describe(&bytes, a.erased_val) {
        Ok(d) => d,
        Err(e) => bail!("{}: {e}", a.imgfile.display()),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let h = &d.header;
    let flags: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(bit, _)| h.flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    writeln!(out, "image: {}", a.imgfile.display())?;
    writeln!(out, "header:")?;
    writeln!(out, "  magic:              {:#010x}", h.magic)?;
    writeln!(out, "  load_addr:          {:#x}", h.load_addr)?;
    writeln!(out, "  hdr_size:           {:#x}", h.hdr_size)?;
    writeln!(out, "  protected_tlv_size: {:#x}", h.protected_tlv_size)?;
    writeln!(out, "  img_size:           {:#x}", h.img_size)?;
    writeln!(
        out,
        "  flags:              {:#x} {}",
        h.flags,
        flags.join(" ")
    )?;
    writeln!(out, "  version:            {}", h.version)?;
    let areas = [
        ("protected TLVs", &d.tlv_area.tlvs_prot),
        ("TLVs", &d.tlv_area.tlvs),
    ];
    for (name, tlvs) in areas {
        if tlvs.is_empty() && d.tlv_area.tlv_hdr_prot.is_none() && name.starts_with("protected") {
            continue;
        }
        writeln!(out, "{name}:")?;
        for t in tlvs {
            writeln!(
                out,
                "  {:<12} ({:#04x}) len {:#x}: {}",
                t.type_name, t.kind, t.len, t.data
            )?;
        }
    }
    match &d.trailer {
        None => writeln!(out, "trailer: none (image not padded)")?,
        Some(t) => {
            let flag = |f: FlagState| match f {
                FlagState::Set => "set",
                FlagState::Unset => "unset",
                FlagState::Bad => "bad",
            };
            let magic = match t.magic_state {
                MagicState::Good => "good",
                MagicState::Unset => "unset",
                MagicState::Bad => "bad",
            };
            writeln!(out, "trailer:")?;
            writeln!(out, "  magic:     {magic} (max_align {})", t.max_align)?;
            writeln!(
                out,
                "  image_ok:  {} ({:#04x})",
                flag(t.image_ok_state),
                t.image_ok
            )?;
            writeln!(
                out,
                "  copy_done: {} ({:#04x})",
                flag(t.copy_done_state),
                t.copy_done
            )?;
            writeln!(
                out,
                "  swap_info: {:#04x} (swap type {:?})",
                t.swap_info, t.swap_type
            )?;
            writeln!(out, "  swap_size: {:#x}", t.swap_size)?;
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
