//! Return paths: where to send the browser after sign-in or sign-out, without an open
//! redirect.
//!
//! A return path comes from the request (`?returnTo=`), travels inside the sealed OAuth state
//! and ends up in a `Location` header. RFC 9700 §4.11: accept only same-origin relative
//! paths that begin with exactly one `/`. Browsers are generous in what they treat as
//! "another host", so a value is refused if it, or any percent-decoding of it, could be
//! read as one:
//!
//! * `//evil.com`, `/\evil.com`, `\\evil.com` (protocol-relative, backslash as slash);
//! * `/%5Cevil.com`, `/%2F/evil.com`, `/%252F…` (the same, encoded once or more);
//! * `/%09/evil.com`, CR/LF or any control character (browsers strip tabs and newlines,
//!   turning `/\t/evil.com` into `//evil.com`; CRLF would split headers);
//! * `https:evil.com`, `http://evil.com`, `javascript:alert(1)` (anything with a scheme),
//!   unless [`ReturnPath::parse_with_origin`] is given the app's origin and the URL is on it.
//!
//! Finally the path is resolved against a placeholder origin (so `/a/../..//evil.com` is
//! caught after dot-segment removal) and re-serialised by the `url` crate, so the stored
//! value is plain ASCII, safe for a header.

use std::fmt;

use url::Url;

/// Longest return path accepted, in bytes.
pub const MAX_RETURN_PATH_LEN: usize = 2048;

/// Why a return path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReturnPathError {
    /// Empty string.
    #[error("return path is empty")]
    Empty,
    /// Longer than [`MAX_RETURN_PATH_LEN`].
    #[error("return path is longer than {MAX_RETURN_PATH_LEN} bytes")]
    TooLong,
    /// Does not start with `/` (and is not a same-origin absolute URL).
    #[error("return path must start with '/'")]
    NotRelative,
    /// Could be read as another host or a scheme: `//x`, `/\x`, encoded forms, controls.
    #[error("return path could lead to another site")]
    OpenRedirect,
    /// An absolute URL on another origin or with a non-http scheme.
    #[error("return URL is not on this app's origin")]
    CrossOrigin,
}

/// A validated same-origin path (with optional query and fragment), safe to put in a
/// `Location` header after the app's origin.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReturnPath(String);

impl ReturnPath {
    /// `/`.
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// Accepts only relative paths starting with exactly one `/`.
    ///
    /// ```
    /// use authkit::return_to::ReturnPath;
    /// assert_eq!(ReturnPath::parse("/orgs/1?tab=users").unwrap().as_str(), "/orgs/1?tab=users");
    /// assert!(ReturnPath::parse("//evil.com").is_err());
    /// assert!(ReturnPath::parse("https://evil.com").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self, ReturnPathError> {
        check_common(input)?;
        if !input.starts_with('/') {
            return Err(ReturnPathError::NotRelative);
        }
        relative(input)
    }

    /// Like [`ReturnPath::parse`], and also accepts an absolute `http(s)` URL whose origin
    /// equals `app_origin` (scheme, host and port), keeping only its path, query and
    /// fragment.
    pub fn parse_with_origin(input: &str, app_origin: &Url) -> Result<Self, ReturnPathError> {
        check_common(input)?;
        if input.starts_with('/') {
            return relative(input);
        }
        let url = Url::parse(input).map_err(|_| ReturnPathError::NotRelative)?;
        if !matches!(url.scheme(), "http" | "https")
            || url.origin() != app_origin.origin()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(ReturnPathError::CrossOrigin);
        }
        let mut rest = url.path().to_owned();
        if let Some(q) = url.query() {
            rest.push('?');
            rest.push_str(q);
        }
        if let Some(f) = url.fragment() {
            rest.push('#');
            rest.push_str(f);
        }
        relative(&rest)
    }

    /// The path, e.g. `/dashboard?tab=1`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for ReturnPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReturnPath({:?})", self.0)
    }
}

impl fmt::Display for ReturnPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ReturnPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn check_common(input: &str) -> Result<(), ReturnPathError> {
    if input.is_empty() {
        return Err(ReturnPathError::Empty);
    }
    if input.len() > MAX_RETURN_PATH_LEN {
        return Err(ReturnPathError::TooLong);
    }
    if input.chars().any(|c| c.is_control() || c == '\\') {
        return Err(ReturnPathError::OpenRedirect);
    }
    Ok(())
}

/// True if `s` could be taken for a different authority: starts with two slashes (either
/// kind), or contains a control character or a backslash anywhere.
fn looks_like_authority(s: &[u8]) -> bool {
    let starts = |i: usize| s.get(i).is_some_and(|b| *b == b'/' || *b == b'\\');
    (starts(0) && starts(1)) || s.iter().any(|b| *b < 0x20 || *b == 0x7f || *b == b'\\')
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|b| hex(*b)),
                s.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn relative(input: &str) -> Result<ReturnPath, ReturnPathError> {
    // Every decoding layer must be harmless; stop once decoding changes nothing.
    let mut cur = input.as_bytes().to_vec();
    for _ in 0..4 {
        if looks_like_authority(&cur) {
            return Err(ReturnPathError::OpenRedirect);
        }
        let next = percent_decode(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    if looks_like_authority(&cur) || cur.contains(&b'%') && percent_decode(&cur) != cur {
        // Still changing after four rounds: nobody legitimately encodes that deep.
        return Err(ReturnPathError::OpenRedirect);
    }

    let base =
        Url::parse("https://return-path.invalid/").map_err(|_| ReturnPathError::OpenRedirect)?;
    let url = base
        .join(input)
        .map_err(|_| ReturnPathError::OpenRedirect)?;
    if url.origin() != base.origin() {
        return Err(ReturnPathError::OpenRedirect);
    }
    let path = url.path();
    if looks_like_authority(path.as_bytes())
        || looks_like_authority(&percent_decode(path.as_bytes()))
    {
        return Err(ReturnPathError::OpenRedirect);
    }
    let mut out = path.to_owned();
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = url.fragment() {
        out.push('#');
        out.push_str(f);
    }
    Ok(ReturnPath(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_are_kept() {
        for p in [
            "/",
            "/dashboard",
            "/orgs/org_1/users?tab=active&q=a+b",
            "/a#frag",
            "/a%20b",
        ] {
            assert_eq!(ReturnPath::parse(p).unwrap().as_str(), p, "{p}");
        }
    }

    #[test]
    fn every_open_redirect_from_the_security_list_is_refused() {
        // perf-security §B5 "Open redirectors", plus close relatives.
        let evil = [
            "//evil.com",
            "/\\evil.com",
            "/%5Cevil.com",
            "/%5cevil.com",
            "https:evil.com",
            "http://evil.com",
            "javascript:alert(1)",
            "/%09/evil.com",
            "\\\\evil.com",
            "/foo\r\nSet-Cookie: x=1",
            "/foo%0d%0aSet-Cookie:%20x=1",
            "/\t/evil.com",
            "/%2F/evil.com",
            "/%2f%2fevil.com",
            "/%252F/evil.com",
            "/%25252F/evil.com",
            "///evil.com",
            "/a/../..//evil.com",
            "/%2e%2e//evil.com",
            "/x/%2E%2E/%2e%2e//evil.com",
            "/.//evil.com",
            "/%2e//evil.com",
            "/./\\evil.com",
            "evil.com",
            "",
            " /x",
        ];
        for e in evil {
            assert!(ReturnPath::parse(e).is_err(), "accepted {e:?}");
        }
    }

    #[test]
    fn dot_segments_are_resolved_safely() {
        assert_eq!(ReturnPath::parse("/a/b/../c").unwrap().as_str(), "/a/c");
        assert_eq!(ReturnPath::parse("/../../x").unwrap().as_str(), "/x");
    }

    #[test]
    fn non_ascii_is_percent_encoded() {
        assert_eq!(ReturnPath::parse("/café").unwrap().as_str(), "/caf%C3%A9");
    }

    #[test]
    fn too_long_is_refused() {
        let long = format!("/{}", "a".repeat(MAX_RETURN_PATH_LEN));
        assert_eq!(ReturnPath::parse(&long), Err(ReturnPathError::TooLong));
    }

    #[test]
    fn same_origin_absolute_urls_are_reduced_to_their_path() {
        let origin = Url::parse("https://app.example.com").unwrap();
        assert_eq!(
            ReturnPath::parse_with_origin("https://app.example.com/x?y=1", &origin)
                .unwrap()
                .as_str(),
            "/x?y=1"
        );
        for bad in [
            "https://evil.com/x",
            "http://app.example.com/x",
            "https://app.example.com:444/x",
            "https://app.example.com.evil.com/",
            "https://user@app.example.com/",
            "https:evil.com",
            "javascript:alert(1)",
            "data:text/html,<script>",
        ] {
            assert!(
                ReturnPath::parse_with_origin(bad, &origin).is_err(),
                "accepted {bad}"
            );
        }
        // A same-origin URL whose path is protocol-relative is still refused.
        assert!(
            ReturnPath::parse_with_origin("https://app.example.com//evil.com", &origin).is_err()
        );
        assert!(ReturnPath::parse_with_origin("//evil.com", &origin).is_err());
    }
}
