//! Trace files: every regular file under a directory (recursively) is one trace of unsigned
//! integer event ids (0–65535) separated by whitespace. Errors name the file and the line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A syntax error inside one trace's text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxError {
    /// A token that is not an unsigned decimal integer.
    NotANumber {
        /// 1-based line.
        line: usize,
        /// The token (shortened).
        token: String,
    },
    /// A number above 65535.
    OutOfRange {
        /// 1-based line.
        line: usize,
        /// The token (shortened).
        token: String,
    },
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber { line, token } => {
                write!(
                    f,
                    "line {line}: {token:?} is not an event id (an unsigned integer)"
                )
            }
            Self::OutOfRange { line, token } => {
                write!(f, "line {line}: event id {token} is above 65535")
            }
        }
    }
}

impl std::error::Error for SyntaxError {}

/// Why traces could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum TraceError {
    /// A file or directory could not be read.
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not UTF-8 text.
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// A file has a malformed token.
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where and what.
        error: SyntaxError,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::NotText { path } => write!(
                f,
                "{}: not a trace (not text; a trace is event ids separated by whitespace)",
                path.display()
            ),
            Self::Syntax { path, error } => write!(f, "{}:{error}", path.display()),
        }
    }
}

impl std::error::Error for TraceError {}

/// One trace: where it came from and its event ids.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The file.
    pub path: PathBuf,
    /// Its events, in order.
    pub events: Vec<u16>,
}

/// Parse a trace's text.
pub fn parse(text: &str) -> Result<Vec<u16>, SyntaxError> {
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for token in line.split_whitespace() {
            let shown = || token.chars().take(24).collect::<String>();
            if !token.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SyntaxError::NotANumber {
                    line: index + 1,
                    token: shown(),
                });
            }
            let id = token.parse::<u16>().map_err(|_| SyntaxError::OutOfRange {
                line: index + 1,
                token: shown(),
            })?;
            events.push(id);
        }
    }
    Ok(events)
}

/// Read one trace file.
pub fn read(path: &Path) -> Result<Trace, TraceError> {
    let bytes = std::fs::read(path).map_err(|source| TraceError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| TraceError::NotText {
        path: path.to_owned(),
    })?;
    let events = parse(&text).map_err(|error| TraceError::Syntax {
        path: path.to_owned(),
        error,
    })?;
    Ok(Trace {
        path: path.to_owned(),
        events,
    })
}

/// The trace files a path names: the file itself, or every regular file under the directory
/// (recursively, in sorted order so results are reproducible; symbolic links are not followed).
pub fn files(path: &Path) -> Result<Vec<PathBuf>, TraceError> {
    let io = |source| TraceError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut pending = vec![path.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| TraceError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| TraceError::Io {
                path: dir.clone(),
                source,
            })?;
            let kind = entry.file_type().map_err(|source| TraceError::Io {
                path: entry.path(),
                source,
            })?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Read every trace a path names (see [`files`]).
pub fn load(path: &Path) -> Result<Vec<Trace>, TraceError> {
    files(path)?.iter().map(|p| read(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_across_lines_and_whitespace() {
        assert_eq!(
            parse("1 2\t3\n\n 65535 0\r\n").unwrap(),
            vec![1, 2, 3, 65535, 0]
        );
        assert_eq!(parse("").unwrap(), Vec::<u16>::new());
    }

    #[test]
    fn names_the_line_of_a_bad_token() {
        let err = parse("1 2\n3 x4\n").unwrap_err();
        assert_eq!(
            err,
            SyntaxError::NotANumber {
                line: 2,
                token: "x4".into()
            }
        );
        assert!(err.to_string().starts_with("line 2:"));
        assert!(matches!(
            parse("-1"),
            Err(SyntaxError::NotANumber { line: 1, .. })
        ));
        assert!(matches!(
            parse("1\n65536"),
            Err(SyntaxError::OutOfRange { line: 2, .. })
        ));
    }

    #[test]
    fn loads_every_regular_file_recursively_in_order() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("z"), "1 2").unwrap();
        std::fs::write(dir.join("a/b/t.txt"), "3").unwrap();
        let traces = load(&dir).unwrap();
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0].events, vec![3]);
        std::fs::write(dir.join("a/bad"), "1\n2 y").unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("bad:line 2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("castellan-trace-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
