//! `castellan suit show`: print a SUIT envelope (draft-ietf-suit-manifest-34) in readable form.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

use super::read_binary_or_hex;

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
            let bytes = read_binary_or_hex(&a.envelope)?;
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
