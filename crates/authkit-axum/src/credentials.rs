//! Reading the credential a request carries, before any crypto.
//!
//! Size caps come first (perf-security §B2 case 14: a 1.3 MB signed token costs 2.5 ms to
//! decode), then the scheme is matched exactly, so a malformed header never reaches the
//! network. An access token's bytes are the verifier's to judge (see [`Credential`]); an
//! API key's are checked here, before it is sent to WorkOS.

use http::{HeaderMap, HeaderValue, header};

/// Longest `Authorization` header we look at.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// What the `Authorization` header holds.
#[derive(Clone, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No `Authorization` header.
    None,
    /// `Bearer sk_…`: a WorkOS API key, to validate through WorkOS.
    ApiKey(&'a str),
    /// `Bearer <jwt>`: an access token, to verify locally.
    AccessToken(&'a str),
    /// A well-formed header with another scheme (`Basic …` from a staging site's HTTP
    /// auth, say). Not a credential for us: web mode falls through to the cookie.
    OtherScheme,
    /// Present but unusable: several headers, over the size cap, an empty or malformed
    /// bearer value.
    Invalid,
}

impl std::fmt::Debug for Bearer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach Debug output.
        f.write_str(match self {
            Bearer::None => "Bearer::None",
            Bearer::ApiKey(_) => "Bearer::ApiKey(..)",
            Bearer::AccessToken(_) => "Bearer::AccessToken(..)",
            Bearer::OtherScheme => "Bearer::OtherScheme",
            Bearer::Invalid => "Bearer::Invalid",
        })
    }
}

/// Whether every byte is visible ASCII (`0x21..=0x7e`).
///
/// Visible ASCII is one interval, so every byte is in it exactly when the smallest and the
/// largest are: a per-lane minimum and maximum over 16-byte chunks, which the compiler turns
/// into one vector min and one max per chunk (~19 ns for a 900-byte token, where a
/// per-chunk fold of comparisons took ~31 ns and a per-byte early exit does not vectorise).
fn is_visible_ascii(bytes: &[u8]) -> bool {
    let visible = |b: &u8| b.wrapping_sub(0x21) < 0x5e;
    let (chunks, rest) = bytes.as_chunks::<16>();
    // Constant starting lanes: starting from the first chunk instead defeats the
    // vectoriser (the loop comes out lane by lane, 3x the instructions).
    let mut low = [u8::MAX; 16];
    let mut high = [0u8; 16];
    for chunk in chunks {
        for i in 0..16 {
            low[i] = low[i].min(chunk[i]);
            high[i] = high[i].max(chunk[i]);
        }
    }
    (chunks.is_empty() || low.iter().chain(&high).all(visible)) && rest.iter().all(visible)
}

/// Classifies the request's `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    match credential(headers) {
        Credential::None => Bearer::None,
        Credential::OtherScheme => Bearer::OtherScheme,
        Credential::Invalid => Bearer::Invalid,
        Credential::ApiKey(key) => Bearer::ApiKey(key),
        Credential::AccessToken { token, .. } => match visible_text(token) {
            Some(token) => Bearer::AccessToken(token),
            None => Bearer::Invalid,
        },
    }
}

/// [`Bearer`] as the layer acts on it: an access token is left in bytes, with the header
/// it is the tail of. The layer hands those bytes to the verifier, which answers a token
/// it has verified before from its cache by comparing them, and checks any other's before
/// parsing it; so a cached token is not scanned here first (~600 instructions of the ~4,300
/// a cached bearer request adds).
pub(crate) enum Credential<'a> {
    None,
    OtherScheme,
    Invalid,
    ApiKey(&'a str),
    AccessToken {
        header: &'a HeaderValue,
        token: &'a [u8],
    },
}

/// Reads the request's single `Authorization` header (several, or one over the size cap,
/// are [`Credential::Invalid`]).
pub(crate) fn credential(headers: &HeaderMap) -> Credential<'_> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credential::None;
    };
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_BYTES {
        return Credential::Invalid;
    }
    let bytes = value.as_bytes();
    let Some(space) = memchr::memchr(b' ', bytes) else {
        return Credential::Invalid;
    };
    let (scheme, token) = (&bytes[..space], &bytes[space + 1..]);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // `HeaderValue` already excludes control characters (bar tab) and DEL, so ASCII
        // is exactly what `HeaderValue::to_str` accepts.
        return if bytes.is_ascii() {
            Credential::OtherScheme
        } else {
            Credential::Invalid
        };
    }
    if token.is_empty() {
        return Credential::Invalid;
    }
    if token.starts_with(b"sk_") {
        return match visible_text(token) {
            Some(key) if authkit::api_key::looks_like_api_key(key) => Credential::ApiKey(key),
            _ => Credential::Invalid,
        };
    }
    Credential::AccessToken {
        header: value,
        token,
    }
}

/// `token` as text when every byte is visible ASCII: one pass over the ~1 KB token for
/// everything a credential may not hold (spaces, tabs, non-ASCII). The UTF-8 check after it
/// cannot fail; it is how safe code gets a `&str`, and simdutf8's vectorised one costs
/// about half of `std::str::from_utf8`'s.
fn visible_text(token: &[u8]) -> Option<&str> {
    if !is_visible_ascii(token) {
        return None;
    }
    simdutf8::basic::from_utf8(token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn with_bytes(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        h
    }

    #[test]
    fn classifies_tokens_keys_and_garbage() {
        assert_eq!(bearer(&HeaderMap::new()), Bearer::None);
        assert_eq!(
            bearer(&with("Bearer eyJ.a.b")),
            Bearer::AccessToken("eyJ.a.b")
        );
        assert_eq!(
            bearer(&with("bearer eyJ.a.b")),
            Bearer::AccessToken("eyJ.a.b")
        );
        assert_eq!(
            bearer(&with("Bearer sk_test_abc")),
            Bearer::ApiKey("sk_test_abc")
        );
        assert_eq!(bearer(&with("Bearer sk_bad!key")), Bearer::Invalid);
        assert_eq!(bearer(&with("Basic dXNlcjpwYXNz")), Bearer::OtherScheme);
        assert_eq!(bearer(&with("Bearer")), Bearer::Invalid);
        assert_eq!(bearer(&with("Bearer ")), Bearer::Invalid);
        assert_eq!(bearer(&with("Bearer a b")), Bearer::Invalid);
        assert_eq!(bearer(&with("Bearer a\tb")), Bearer::Invalid);
        assert_eq!(
            bearer(&with_bytes(b"Bearer eyJ.\xc3\xa9.b")),
            Bearer::Invalid,
            "non-ASCII (obs-text) bytes"
        );
    }

    #[test]
    fn visible_ascii_check_catches_any_bad_byte_in_any_position() {
        assert!(is_visible_ascii(b""));
        // Every lane of the 16-byte chunks and every position of the tail after them, for
        // every length up to four chunks, then a token-sized input.
        let cases = (1..=64).map(|len| (len, (0..len).collect::<Vec<_>>()));
        for (len, positions) in cases.chain([(900, vec![0, 17, 450, 895, 899])]) {
            let good = vec![b'a'; len];
            assert!(is_visible_ascii(&good), "len {len}");
            for at in positions {
                for bad in [b' ', b'\t', 0x7f, 0x80, 0xff, 0x00] {
                    let mut v = good.clone();
                    v[at] = bad;
                    assert!(!is_visible_ascii(&v), "len {len}, byte {bad:#x} at {at}");
                }
                for edge in [0x21, 0x7e] {
                    let mut v = good.clone();
                    v[at] = edge;
                    assert!(is_visible_ascii(&v), "len {len}, byte {edge:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn non_ascii_in_another_scheme_is_invalid_not_a_fallthrough() {
        assert_eq!(bearer(&with_bytes(b"Basic \xc3\xa9")), Bearer::Invalid);
        assert_eq!(bearer(&with_bytes(b"B\xc3\xa9arer x")), Bearer::Invalid);
    }

    #[test]
    fn oversized_authorization_is_refused_before_parsing() {
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(bearer(&with(&huge)), Bearer::Invalid);
    }

    #[test]
    fn two_authorization_headers_are_ambiguous() {
        let mut h = with("Bearer a.b.c");
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer d.e.f"),
        );
        assert_eq!(bearer(&h), Bearer::Invalid);
    }
}
