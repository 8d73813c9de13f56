//! A human-readable dump of an envelope (feature `std`), for `castellan suit show`.
//!
//! It decodes without trusting: signatures are listed but not verified (no keys are given), the
//! manifest digest and severable digests are recomputed and reported as matching or not. Hostile
//! input gives an error or a partial dump, never a panic.

use std::fmt::Write as _;
use std::string::String;

use crate::cbor::{
    MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NINT, MAJOR_SIMPLE, MAJOR_TAG, MAJOR_TEXT,
    MAJOR_UINT, Reader,
};
use crate::command::{Command, Parameter, Section, TAG_COSE_SIGN1, key};
use crate::cose::{SignatureAlgorithm, protected_algorithm};
use crate::digest::SuitDigest;
use crate::envelope::Envelope;
use crate::error::{Part, SuitError};

/// Deepest CBOR nesting printed (deeper items are elided).
const MAX_DEPTH: usize = 12;

/// Describes `envelope` in text: authentication wrapper, manifest fields, components, every
/// command sequence (disassembled), severable elements, text and integrated payloads.
pub fn describe(envelope: &[u8]) -> Result<String, SuitError> {
    let env = Envelope::parse(envelope)?;
    let mut out = String::new();
    let _ = writeln!(out, "SUIT envelope, {} bytes", envelope.len());
    let manifest = env.manifest.ok_or(SuitError::Malformed(Part::Envelope))?;
    match env.auth {
        None => out.push_str("authentication wrapper: MISSING (unauthenticated)\n"),
        Some(auth) => describe_auth(&mut out, auth, manifest.encoded)?,
    }
    let _ = writeln!(out, "manifest, {} bytes:", manifest.content.len());
    describe_manifest(&mut out, manifest.content, &env)?;
    for (name, len) in env.integrated_names() {
        let _ = writeln!(out, "integrated payload {name:?}: {len} bytes");
    }
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn describe_auth(out: &mut String, auth: &[u8], manifest_encoded: &[u8]) -> Result<(), SuitError> {
    let mut r = Reader::new(auth, Part::AuthenticationWrapper);
    let n = r.array()?;
    if n == 0 {
        return Err(SuitError::Malformed(Part::AuthenticationWrapper));
    }
    let digest = SuitDigest::decode(r.bytes()?)?;
    let verdict = if digest.matches(manifest_encoded) {
        "matches the manifest"
    } else {
        "DOES NOT MATCH the manifest"
    };
    let _ = writeln!(
        out,
        "authentication wrapper:\n  manifest digest: {} {} ({verdict})",
        digest.algorithm.name(),
        hex(digest.bytes)
    );
    for i in 1..n {
        let block = r.bytes()?;
        let mut b = Reader::new(block, Part::Cose);
        let tag = b.tag()?;
        let kind = match tag {
            TAG_COSE_SIGN1 => "COSE_Sign1",
            98 => "COSE_Sign",
            17 => "COSE_Mac0",
            97 => "COSE_Mac",
            _ => "unknown COSE structure",
        };
        let alg = if tag == TAG_COSE_SIGN1 && b.array()? == 4 {
            protected_algorithm(b.bytes()?)?
        } else {
            None
        };
        let alg = alg.map_or("unsupported or missing algorithm", SignatureAlgorithm::name);
        let _ = writeln!(
            out,
            "  signature {i}: {kind}, {alg} (not verified: describe has no keys)"
        );
    }
    Ok(())
}

fn describe_manifest(
    out: &mut String,
    manifest: &[u8],
    env: &Envelope<'_>,
) -> Result<(), SuitError> {
    let mut r = Reader::new(manifest, Part::Manifest);
    let n = r.map()?;
    for _ in 0..n {
        let k = r.int()?;
        match k {
            key::VERSION => {
                let _ = writeln!(out, "  manifest-version: {}", r.uint()?);
            }
            key::SEQUENCE_NUMBER => {
                let _ = writeln!(out, "  manifest-sequence-number: {}", r.uint()?);
            }
            key::REFERENCE_URI => {
                let _ = writeln!(out, "  reference-uri: {:?}", r.text()?);
            }
            key::COMMON => describe_common(out, r.bytes()?)?,
            key::VALIDATE | key::LOAD | key::INVOKE => {
                let name = section_for(k).map_or("?", Section::name);
                let _ = writeln!(out, "  {name}:");
                describe_sequence(out, r.bytes()?, 2)?;
            }
            key::PAYLOAD_FETCH | key::INSTALL | key::TEXT => {
                let section = section_for(k).unwrap_or(Section::Text);
                describe_severable(out, &mut r, section, env)?;
            }
            other => {
                let _ = write!(out, "  unknown manifest element {other}: ");
                diag(out, &mut r, 0)?;
                out.push('\n');
            }
        }
    }
    r.finish()
}

fn section_for(k: i64) -> Option<Section> {
    Some(match k {
        key::VALIDATE => Section::Validate,
        key::LOAD => Section::Load,
        key::INVOKE => Section::Invoke,
        key::PAYLOAD_FETCH => Section::PayloadFetch,
        key::INSTALL => Section::Install,
        key::TEXT => Section::Text,
        _ => return None,
    })
}

fn describe_severable(
    out: &mut String,
    r: &mut Reader<'_>,
    section: Section,
    env: &Envelope<'_>,
) -> Result<(), SuitError> {
    let name = section.name();
    let content = if r.peek_major()? == MAJOR_ARRAY {
        let d = SuitDigest::read(r)?;
        match env.severable(section) {
            None => {
                let _ = writeln!(
                    out,
                    "  {name}: severed (digest {} {})",
                    d.algorithm.name(),
                    hex(d.bytes)
                );
                return Ok(());
            }
            Some(el) => {
                let ok = if d.matches(el.encoded) {
                    "digest matches"
                } else {
                    "DIGEST DOES NOT MATCH"
                };
                let _ = writeln!(out, "  {name}: severable element in envelope ({ok}):");
                el.content
            }
        }
    } else {
        let _ = writeln!(out, "  {name}:");
        r.bytes()?
    };
    if section == Section::Text {
        describe_text(out, content)
    } else {
        describe_sequence(out, content, 2)
    }
}

fn describe_common(out: &mut String, common: &[u8]) -> Result<(), SuitError> {
    let mut r = Reader::new(common, Part::Common);
    let n = r.map()?;
    out.push_str("  common:\n");
    for _ in 0..n {
        match r.int()? {
            key::COMPONENTS => {
                out.push_str("    components:\n");
                let count = r.array()?;
                for i in 0..count {
                    let _ = write!(out, "      [{i}] ");
                    diag(out, &mut r, 0)?;
                    out.push('\n');
                }
            }
            key::SHARED_SEQUENCE => {
                out.push_str("    shared-sequence:\n");
                describe_sequence(out, r.bytes()?, 3)?;
            }
            key::DEPENDENCIES => {
                out.push_str("    dependencies (not supported by the processor): ");
                diag(out, &mut r, 0)?;
                out.push('\n');
            }
            other => {
                let _ = write!(out, "    unknown common element {other}: ");
                diag(out, &mut r, 0)?;
                out.push('\n');
            }
        }
    }
    Ok(())
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn describe_sequence(out: &mut String, seq: &[u8], level: usize) -> Result<(), SuitError> {
    if level > MAX_DEPTH {
        indent(out, level);
        out.push_str("…\n");
        return Ok(());
    }
    let mut r = Reader::new(seq, Part::Sequence);
    let n = r.array()?;
    for _ in 0..n / 2 {
        let code = r.int()?;
        indent(out, level);
        let name = Command::from_code(code).map_or("unknown command", Command::name);
        let _ = write!(out, "{name} ({code})");
        match code {
            19 | 20 => {
                out.push_str(" {\n");
                describe_parameters(out, &mut r, level + 1)?;
                indent(out, level);
                out.push_str("}\n");
            }
            15 => {
                out.push_str(":\n");
                let k = r.array()?;
                for i in 0..k {
                    indent(out, level + 1);
                    if r.peek_null() {
                        r.null()?;
                        out.push_str("or nothing (nil)\n");
                    } else {
                        let _ = writeln!(out, "alternative {i}:");
                        describe_sequence(out, r.bytes()?, level + 2)?;
                    }
                }
            }
            32 => {
                out.push_str(":\n");
                describe_sequence(out, r.bytes()?, level + 1)?;
            }
            12 => {
                out.push_str(": ");
                diag(out, &mut r, 0)?;
                out.push('\n');
            }
            _ => {
                out.push_str(", policy ");
                diag(out, &mut r, 0)?;
                out.push('\n');
            }
        }
    }
    Ok(())
}

fn describe_parameters(
    out: &mut String,
    r: &mut Reader<'_>,
    level: usize,
) -> Result<(), SuitError> {
    let n = r.map()?;
    for _ in 0..n {
        let code = r.int()?;
        indent(out, level);
        let name = match Parameter::from_code(code) {
            Some(p) => p.name(),
            None if code == crate::CUSTOM_PARAMETER_EXPIRES => "castellan-expires",
            None if code < -256 => "custom parameter",
            None => "unknown parameter",
        };
        let _ = write!(out, "{name} ({code}): ");
        if code == Parameter::ImageDigest.code() {
            let raw = r.bytes()?;
            match SuitDigest::decode(raw) {
                Ok(d) => {
                    let _ = write!(out, "{} {}", d.algorithm.name(), hex(d.bytes));
                }
                Err(_) => {
                    let _ = write!(out, "undecodable h'{}'", hex(raw));
                }
            }
        } else {
            diag(out, r, 0)?;
        }
        out.push('\n');
    }
    Ok(())
}

fn describe_text(out: &mut String, text: &[u8]) -> Result<(), SuitError> {
    let mut r = Reader::new(text, Part::Text);
    let langs = r.map()?;
    for _ in 0..langs {
        let _ = write!(out, "    language ");
        diag(out, &mut r, 0)?;
        out.push_str(":\n");
        let n = r.map()?;
        for _ in 0..n {
            if r.peek_major()? == MAJOR_ARRAY {
                out.push_str("      component ");
                diag(out, &mut r, 0)?;
                out.push_str(":\n");
                let m = r.map()?;
                for _ in 0..m {
                    let k = r.int()?;
                    let name = match k {
                        1 => "vendor-name",
                        2 => "model-name",
                        3 => "vendor-domain",
                        4 => "model-info",
                        5 => "component-description",
                        6 => "component-version",
                        _ => "text",
                    };
                    let _ = write!(out, "        {name} ({k}): ");
                    diag(out, &mut r, 0)?;
                    out.push('\n');
                }
            } else {
                let k = r.int()?;
                let name = match k {
                    1 => "manifest-description",
                    2 => "update-description",
                    3 => "manifest-json-source",
                    4 => "manifest-yaml-source",
                    _ => "text",
                };
                let _ = write!(out, "      {name} ({k}): ");
                diag(out, &mut r, 0)?;
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// CBOR diagnostic notation of one item.
fn diag(out: &mut String, r: &mut Reader<'_>, depth: usize) -> Result<(), SuitError> {
    if depth > MAX_DEPTH {
        r.skip()?;
        out.push('…');
        return Ok(());
    }
    match r.peek_major()? {
        MAJOR_UINT | MAJOR_NINT => {
            let (major, arg) = r.head()?;
            if major == MAJOR_UINT {
                let _ = write!(out, "{arg}");
            } else {
                let _ = write!(out, "-{}", u128::from(arg) + 1);
            }
        }
        MAJOR_BYTES => {
            let b = r.bytes()?;
            let _ = write!(out, "h'{}'", hex(b));
        }
        MAJOR_TEXT => {
            let _ = write!(out, "{:?}", r.text()?);
        }
        MAJOR_ARRAY => {
            let n = r.array()?;
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                diag(out, r, depth + 1)?;
            }
            out.push(']');
        }
        MAJOR_MAP => {
            let n = r.map()?;
            out.push('{');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                diag(out, r, depth + 1)?;
                out.push_str(": ");
                diag(out, r, depth + 1)?;
            }
            out.push('}');
        }
        MAJOR_TAG => {
            let t = r.tag()?;
            let _ = write!(out, "{t}(");
            diag(out, r, depth + 1)?;
            out.push(')');
        }
        MAJOR_SIMPLE => {
            let (_, v) = r.head()?;
            let _ = match v {
                20 => write!(out, "false"),
                21 => write!(out, "true"),
                22 => write!(out, "null"),
                23 => write!(out, "undefined"),
                _ => write!(out, "simple/float"),
            };
        }
        _ => return Err(SuitError::Malformed(Part::Manifest)),
    }
    Ok(())
}
