//! `castellan suit show`: print a SUIT envelope (draft-ietf-suit-manifest-34) in readable form.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::read_file;

/// `castellan suit …`
#[derive(Subcommand)]
pub(crate) enum SuitCommand {
    /// Decode and print a SUIT envelope (signatures are not checked by `show`).
    Show(ShowArgs),
}

/// Arguments of `castellan suit show`.
#[derive(Args)]
pub(crate) struct ShowArgs {
    /// Envelope file: raw CBOR, or hex text.
    envelope: PathBuf,
}

/// Run a SUIT subcommand.
pub(crate) fn run(c: SuitCommand) -> anyhow::Result<ExitCode> {
    match c {
        SuitCommand::Show(a) => {
            let mut bytes = read_file(&a.envelope)?;
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let compact: String = text.split_whitespace().collect();
                if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bytes = hex::decode(compact)?;
                }
            }
            match castellan_suit::describe(&bytes) {
                Ok(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => bail!("{}: not a SUIT envelope: {e}", a.envelope.display()),
            }
        }
    }
}
