//! Parsers for command-line values that clap does not know (numbers as imgtool writes them,
//! image versions, erased values, dependency lists), each failing with a typed [`ArgError`]
//! that clap shows next to the offending argument.

use castellan_image::Dependency;
use castellan_image::Version;

/// Why a command-line value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ArgError {
    /// Not a number in decimal or with a 0x / 0o / 0b prefix.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// A number too large for the argument.
    #[error("`{value}` does not fit in {bits} bits")]
    TooLarge {
        /// The value as written.
        value: String,
        /// The argument's width.
        bits: u32,
    },
    /// Not a version of the form `maj.min.rev+build`.
    #[error("`{0}` is not a version of the form maj.min.rev+build")]
    NotAVersion(String),
    /// An erased value other than 0 or 0xff.
    #[error("erased value must be 0 or 0xff")]
    ErasedValue,
    /// A dependency list that is not `(image, version)` pairs.
    #[error("`{0}`: expected `(image, version)` pairs")]
    NotDependencies(String),
    /// A dependency list with no pair.
    #[error("`{0}`: no dependency given")]
    NoDependency(String),
}

/// Parse an integer written in decimal or with a 0x / 0o / 0b prefix, as imgtool accepts.
pub(crate) fn parse_int(s: &str) -> Result<u64, ArgError> {
    let s = s.trim();
    let (digits, radix) = match s.get(..2) {
        Some("0x" | "0X") => (&s[2..], 16),
        Some("0o" | "0O") => (&s[2..], 8),
        Some("0b" | "0B") => (&s[2..], 2),
        _ => (s, 10),
    };
    u64::from_str_radix(digits, radix).map_err(|_| ArgError::NotANumber(s.to_owned()))
}

/// [`parse_int`] into a narrower integer type.
fn parse_narrow<T: TryFrom<u64>>(s: &str) -> Result<T, ArgError> {
    T::try_from(parse_int(s)?).map_err(|_| ArgError::TooLarge {
        value: s.trim().to_owned(),
        bits: u32::try_from(8 * std::mem::size_of::<T>()).unwrap_or(u32::MAX),
    })
}

/// A number that fits in 8 bits.
pub(crate) fn parse_u8(s: &str) -> Result<u8, ArgError> {
    parse_narrow(s)
}

/// A number that fits in 16 bits.
pub(crate) fn parse_u16(s: &str) -> Result<u16, ArgError> {
    parse_narrow(s)
}

/// A number that fits in 32 bits.
pub(crate) fn parse_u32(s: &str) -> Result<u32, ArgError> {
    parse_narrow(s)
}

/// An image version, `maj.min.rev+build`.
pub(crate) fn parse_version(s: &str) -> Result<Version, ArgError> {
    Version::parse(s).ok_or_else(|| ArgError::NotAVersion(s.to_owned()))
}

/// The value of erased flash: 0 or 0xff.
pub(crate) fn parse_erased(s: &str) -> Result<u8, ArgError> {
    match parse_int(s)? {
        0 => Ok(0),
        0xff => Ok(0xff),
        _ => Err(ArgError::ErasedValue),
    }
}

/// The parsed value of `--dependencies`.
#[derive(Clone, Debug)]
pub(crate) struct Dependencies(pub(crate) Vec<Dependency>);

/// Parse imgtool's dependency syntax: `(image, version)` pairs separated by commas.
pub(crate) fn parse_dependencies(s: &str) -> Result<Dependencies, ArgError> {
    let mut out = Vec::new();
    for group in s.split(')') {
        let group = group.trim().trim_start_matches(',').trim();
        if group.is_empty() {
            continue;
        }
        let inner = group
            .strip_prefix('(')
            .ok_or_else(|| ArgError::NotDependencies(s.to_owned()))?;
        let (id, version) = inner
            .split_once(',')
            .ok_or_else(|| ArgError::NotDependencies(format!("{group})")))?;
        out.push(Dependency {
            image_id: parse_u8(id)?,
            min_version: parse_version(version.trim())?,
        });
    }
    if out.is_empty() {
        return Err(ArgError::NoDependency(s.to_owned()));
    }
    Ok(Dependencies(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_radix_and_width() {
        assert_eq!(parse_int("0x20"), Ok(32));
        assert_eq!(parse_int("0b101"), Ok(5));
        assert_eq!(
            parse_u16("0x10000"),
            Err(ArgError::TooLarge {
                value: "0x10000".into(),
                bits: 16
            })
        );
        assert_eq!(parse_u32("12x"), Err(ArgError::NotANumber("12x".into())));
    }

    #[test]
    fn dependencies_as_imgtool_writes_them() {
        let d = parse_dependencies("(0,1.0.0), (1, 2.0.0+3)").unwrap();
        assert_eq!(d.0.len(), 2);
        assert_eq!(d.0[1].image_id, 1);
        assert!(matches!(
            parse_dependencies(""),
            Err(ArgError::NoDependency(_))
        ));
        assert!(matches!(
            parse_dependencies("1,2"),
            Err(ArgError::NotDependencies(_))
        ));
        assert!(matches!(
            parse_dependencies("(300, 1.0.0)"),
            Err(ArgError::TooLarge { bits: 8, .. })
        ));
    }
}
