//! The shared secret (SPEC §7): loading it from its file and checking what a client offers.
//!
//! A [`Token`] never leaves this module as text: it cannot be printed (its `Debug` is redacted and
//! it has no `Display`), and the only question it answers is [`Token::matches`], in time that
//! depends on the length of the candidate only, never on where the first difference is.

use std::fmt;
use std::path::{Path, PathBuf};

use subtle::{Choice, ConstantTimeEq};

/// The token every client must present when one is set.
pub struct Token(Box<[u8]>);

/// Why a token file could not be used. Messages name the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {} is empty", path.display())]
    Empty { path: PathBuf },
}

impl Token {
    /// Reads the token from `path`: the whole file, surrounding whitespace trimmed.
    pub fn load(path: &Path) -> Result<Token, TokenError> {
        let bytes = std::fs::read(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        Token::new(bytes.trim_ascii()).ok_or_else(|| TokenError::Empty {
            path: path.to_owned(),
        })
    }

    /// A token from its bytes, taken as they are; `None` when empty, as an empty token would
    /// let anyone in.
    pub fn new(secret: &[u8]) -> Option<Token> {
        (!secret.is_empty()).then(|| Token(secret.into()))
    }

    /// Whether `candidate` is the token. Runs in time that depends on `candidate.len()` only: every
    /// candidate byte is compared (against the token repeated), whatever the outcome.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let secret = &self.0;
        let same_length = (candidate.len() as u64).ct_eq(&(secret.len() as u64));
        let same_bytes = candidate
            .iter()
            .zip(secret.iter().cycle())
            .fold(Choice::from(1), |acc, (a, b)| acc & a.ct_eq(b));
        (same_length & same_bytes).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(contents: &[u8]) -> Result<Token, TokenError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, contents).unwrap();
        Token::load(&path)
    }

    #[test]
    fn matches_only_the_exact_token() {
        let token = Token::new(b"s3cret").unwrap();
        assert!(token.matches(b"s3cret"));
        for wrong in [
            &b""[..],
            b"s3cre",
            b"s3crett",
            b"S3cret",
            b"s3cret\n",
            b"s3crets3cret",
        ] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn load_trims_surrounding_whitespace_only() {
        let token = load(b"  \t top secret \r\n\n").unwrap();
        assert!(token.matches(b"top secret"));
        assert!(!token.matches(b"topsecret"));
    }

    #[test]
    fn empty_or_blank_files_are_refused() {
        for contents in [&b""[..], b"\n", b"  \r\n\t "] {
            assert!(matches!(load(contents), Err(TokenError::Empty { .. })));
        }
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_the_file() {
        let err = Token::load(Path::new("/nonexistent/groupd-token")).unwrap_err();
        assert!(matches!(err, TokenError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/groupd-token"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::new(b"hunter2").unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let shown = format!("{:?}", Some(&token));
        assert!(!shown.contains("hunter2"));
    }
}
