//! `cargo xtask firmware --symbols [IMAGE] [--top N]`: where an image's flash goes, per symbol
//! and per crate, read from the ELF with `arm-none-eabi-nm --print-size --size-sort` (the same
//! figures `cargo bloat` gives for a host binary). `docs/benchmarks.md` keeps the ROM stage's
//! top contributors.
//!
//! Only symbols in flash count (`nm` types `t`/`T` code, `r`/`R` read-only data); RAM symbols
//! are left out. The crate of a symbol is the first path segment of its demangled name
//! (`<p256::Scalar as Mul>::mul` → `p256`); names without one (compiler-generated constants
//! such as `.Lanon.*`, string literals) are grouped as `(anonymous data)`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::steps::Result;

/// One symbol of the image's flash.
#[derive(Debug, Clone)]
struct Symbol {
    size: u64,
    name: String,
}

/// Symbols of `elf` that occupy flash, largest first.
fn flash_symbols(elf: &Path) -> Result<Vec<Symbol>> {
    let o = Command::new("arm-none-eabi-nm")
        .args([
            "--print-size",
            "--size-sort",
            "--reverse-sort",
            "--radix=d",
            "-C",
        ])
        .arg(elf)
        .output()
        .map_err(|e| format!("arm-none-eabi-nm: {e} (install binutils-arm-none-eabi)"))?;
    if !o.status.success() {
        return Err(format!(
            "arm-none-eabi-nm {} failed: {}",
            elf.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let symbols = text
        .lines()
        .filter_map(|line| {
            // "<address> <size> <type> <name>"
            let mut parts = line.splitn(4, ' ');
            let _address = parts.next()?;
            let size: u64 = parts.next()?.parse().ok()?;
            let kind = parts.next()?;
            let name = parts.next()?.to_owned();
            matches!(kind, "t" | "T" | "r" | "R").then_some(Symbol { size, name })
        })
        .collect();
    Ok(symbols)
}

/// True for a symbol of `core::fmt`'s machinery: the formatter, `fmt::write`, and any
/// `Display`, `Debug` or `Write` impl. The five 8-byte `core::panicking` stubs of a quiet panic
/// handler are not: they format nothing.
fn is_formatting(name: &str) -> bool {
    name.contains("core::fmt::") || name.contains("Formatter")
}

/// Fails when `elf` links any formatting machinery (`is_formatting`): the images that are
/// built without it (the boot stages, the secure partition: docs/benchmarks.md) keep it out.
pub(crate) fn check_no_formatting(image: &str, elf: &Path) -> Result<()> {
    let found: Vec<String> = flash_symbols(elf)?
        .into_iter()
        .filter(|s| is_formatting(&s.name))
        .map(|s| format!("  {} {}", s.size, s.name))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{image} links formatting machinery (write it with castellan-text or the console's \
         writers instead; docs/benchmarks.md):\n{}",
        found.join("\n")
    ))
}

/// True for a symbol of the edge detector (docs/detection.md, "In the firmware"): the scorer
/// and model parser (`castellan_detect`), the report encoder (`castellan_detect_report`), the
/// services' and the partition's detector modules, the float routines only the scorer uses
/// (`libm`, compiler-builtins' soft float) and the embedded model.
fn is_detector(name: &str) -> bool {
    matches!(
        crate_of(name),
        "castellan_detect" | "castellan_detect_report" | "libm"
    ) || name.contains("castellan_services::detect::")
        || name.contains("castellan_secure::detect::")
        || name.contains("compiler_builtins::float::")
        || name.contains("compiler_builtins::math::")
}

/// Flash bytes of `elf`'s detector symbols ([`is_detector`]).
pub(crate) fn detector_flash(elf: &Path) -> Result<u64> {
    Ok(flash_symbols(elf)?
        .iter()
        .filter(|s| is_detector(&s.name))
        .map(|s| s.size)
        .sum())
}

/// The crate a demangled symbol name belongs to (see the module documentation).
fn crate_of(name: &str) -> &str {
    let trimmed = name.trim_start_matches(['<', '&', '*', '(', '[']);
    let trimmed = trimmed.strip_prefix("mut ").unwrap_or(trimmed);
    match trimmed.split_once("::") {
        Some((first, _))
            if !first.is_empty() && first.chars().all(|c| c.is_alphanumeric() || c == '_') =>
        {
            first
        }
        _ if trimmed.starts_with('.') => "(anonymous data)",
        _ => "(other)",
    }
}

/// The report for one image: the `top` largest symbols, then every crate's total.
fn report(elf: &Path, top: usize) -> Result<Vec<String>> {
    let symbols = flash_symbols(elf)?;
    let total: u64 = symbols.iter().map(|s| s.size).sum();
    let mut out = vec![format!(
        "{} — {} bytes in {} flash symbols",
        elf.display(),
        total,
        symbols.len()
    )];
    out.push(format!("  {:>8} {:>6}  symbol", "bytes", "share"));
    for s in symbols.iter().take(top) {
        out.push(format!(
            "  {:>8} {:>5.1}%  {}",
            s.size,
            percent(s.size, total),
            shorten(&s.name, 110)
        ));
    }
    let mut by_crate: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &symbols {
        *by_crate.entry(crate_of(&s.name)).or_default() += s.size;
    }
    let mut crates: Vec<(&str, u64)> = by_crate.into_iter().collect();
    crates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    out.push(String::new());
    out.push(format!("  {:>8} {:>6}  crate", "bytes", "share"));
    for (name, size) in crates {
        out.push(format!(
            "  {size:>8} {:>5.1}%  {name}",
            percent(size, total)
        ));
    }
    Ok(out)
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// `name` cut to `max` characters (long generic instantiations), marked with `…`.
fn shorten(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Options of `--symbols`: which image (a name from the footprint table, matched by prefix,
/// default the ROM stage) and how many symbols.
pub(crate) fn symbols_cmd(
    images: &[(&'static str, std::path::PathBuf)],
    args: &[String],
) -> Result {
    let mut wanted = "ROM stage".to_owned();
    let mut top = 30usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--symbols" => {}
            "--top" => {
                top = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--top needs a number of symbols, e.g. --top 40")?;
            }
            other => wanted = other.to_owned(),
        }
    }
    let (_, elf) = images
        .iter()
        .find(|(name, _)| name.to_lowercase().starts_with(&wanted.to_lowercase()))
        .ok_or_else(|| {
            let names: Vec<&str> = images.iter().map(|(n, _)| *n).collect();
            format!("no image called `{wanted}`; images: {}", names.join(", "))
        })?;
    eprintln!();
    for line in report(elf, top)? {
        eprintln!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{crate_of, is_formatting};

    #[test]
    fn formatting_symbols_are_told_from_quiet_panic_stubs() {
        for name in [
            "core::fmt::write",
            "<core::fmt::Formatter>::pad_integral",
            "<u32 as core::fmt::Display>::fmt",
            "<&castellan_image::error::ImageError as core::fmt::Display>::fmt",
            "<castellan_platform_an505::console::Console as core::fmt::Write>::write_str",
        ] {
            assert!(is_formatting(name), "{name}");
        }
        for name in [
            "core::panicking::panic_fmt",
            "core::panicking::panic_bounds_check",
            "<dyn castellan_text::Sink>::fill",
            "<castellan_image::error::ImageError as castellan_text::Describe>::describe",
        ] {
            assert!(!is_formatting(name), "{name}");
        }
    }

    #[test]
    fn symbols_are_grouped_by_their_first_path_segment() {
        assert_eq!(crate_of("sha2::sha512::compress512"), "sha2");
        assert_eq!(
            crate_of("<p256::arithmetic::scalar::Scalar as core::ops::arith::Mul>::mul"),
            "p256"
        );
        assert_eq!(
            crate_of("<&der::tag::Tag as core::fmt::Display>::fmt"),
            "der"
        );
        assert_eq!(crate_of(".Lanon.1aecbaba.9"), "(anonymous data)");
        assert_eq!(crate_of("__INTERRUPTS"), "(other)");
    }
}
