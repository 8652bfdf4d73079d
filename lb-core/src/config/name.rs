//! Object names as Kubernetes accepts them (RFC 1123), so that whatever
//! passes here also applies to a cluster, and no name can carry terminal
//! escapes, spaces or hundreds of characters into the output.

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Longer than the form allows.
    #[error("{name:?} is {len} characters; {form} names are at most {max}")]
    TooLong { name: String, len: usize, max: usize, form: &'static str },
    /// A character or a shape the form does not allow.
    #[error(
        "{name:?} is not a valid {form} name: lowercase letters, digits and '-'{dots}, starting and ending with a letter or digit"
    )]
    Invalid { name: String, form: &'static str, dots: &'static str },
}

/// Longest RFC 1123 subdomain (most object names).
pub const MAX_SUBDOMAIN: usize = 253;
/// Longest RFC 1123 label (Service and Namespace names).
pub const MAX_LABEL: usize = 63;

/// Lowercase letters, digits and `-`, not at either end. (Kubernetes does
/// not limit the length of each dot-separated part of a subdomain.)
fn is_label(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// An RFC 1123 subdomain: what the API server requires of the names of
/// custom resources (every `metallb.io` kind) and of ConfigMaps and Secrets.
pub fn check_subdomain(name: &str) -> Result<(), NameError> {
    let len = name.chars().count();
    if len > MAX_SUBDOMAIN {
        return Err(NameError::TooLong { name: shortened(name), len, max: MAX_SUBDOMAIN, form: "RFC 1123 subdomain" });
    }
    if name.split('.').all(is_label) {
        Ok(())
    } else {
        Err(NameError::Invalid { name: name.into(), form: "RFC 1123 subdomain", dots: " and '.'" })
    }
}

/// An RFC 1123 label: what Kubernetes requires of Namespace names, and
/// (at least) of Service names, which become DNS labels.
pub fn check_label(name: &str) -> Result<(), NameError> {
    let len = name.chars().count();
    if len > MAX_LABEL {
        return Err(NameError::TooLong { name: shortened(name), len, max: MAX_LABEL, form: "RFC 1123 label" });
    }
    if is_label(name) {
        Ok(())
    } else {
        Err(NameError::Invalid { name: name.into(), form: "RFC 1123 label", dots: "" })
    }
}

/// The start of an overlong name, enough to find it, not to flood a line.
pub(crate) fn shortened(name: &str) -> String {
    let mut short: String = name.chars().take(40).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        for ok in ["a", "web-1", "pool.example", "0"] {
            assert_eq!(check_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in ["", "My_Pool", "a b", "-a", "a-", "a..b", "\u{1b}[2J", "é"] {
            assert!(check_subdomain(bad).is_err(), "{bad:?}");
        }
        assert!(check_subdomain(&"a".repeat(253)).is_ok());
        assert!(check_subdomain(&"a".repeat(254)).is_err());
        assert!(check_label(&"a".repeat(63)).is_ok());
        assert!(check_label(&"a".repeat(64)).is_err());
        assert!(check_label("a.b").is_err());
        let message = check_subdomain("x\u{1b}[2J").expect_err("escape").to_string();
        assert!(message.contains("\\u{1b}") && !message.contains('\u{1b}'), "{message}");
    }
}
