//! `Set-Cookie` values for the session and PKCE-verifier cookies.
//!
//! Attributes follow authkit-nextjs (wire spec §5.2) with one stricter default: `Secure` is set
//! unless the app's redirect URI is plain `http://` on a loopback host (`localhost`,
//! `127.0.0.1`, `[::1]`), so a misconfigured production deployment fails closed.

use std::time::Duration;

use authkit::config::{AuthKitConfig, SameSite};
use cookie::Cookie;
use http::HeaderValue;

/// How the app's cookies are written.
#[derive(Clone, Debug)]
pub struct CookieSettings {
    name: String,
    domain: Option<String>,
    max_age: Duration,
    same_site: SameSite,
    secure: bool,
}

/// Lifetime of a PKCE verifier cookie: the sealed state it carries expires with it.
pub const VERIFIER_MAX_AGE: Duration = Duration::from_secs(600);

impl CookieSettings {
    /// Reads name, domain, max age and SameSite from the config; derives `Secure` from the
    /// redirect URI (see the module docs).
    pub fn from_config(config: &AuthKitConfig) -> Self {
        let secure = match config.redirect_uri() {
            Some(uri) => !(uri.scheme() == "http" && is_loopback_host(uri.host_str())),
            None => true,
        };
        Self {
            name: config.cookie_name().to_owned(),
            domain: config.cookie_domain().map(str::to_owned),
            max_age: config.cookie_max_age(),
            same_site: config.cookie_same_site(),
            // SameSite=None is only honoured on Secure cookies.
            secure: secure || config.cookie_same_site() == SameSite::None,
        }
    }

    /// The session cookie's name (`wos-session` by default).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether cookies carry the `Secure` attribute.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// `Set-Cookie` for a freshly sealed session.
    pub fn session(&self, sealed: &str) -> HeaderValue {
        self.build(&self.name, sealed, self.max_age, self.same_site)
    }

    /// `Set-Cookie` that deletes the session cookie.
    pub fn clear_session(&self) -> HeaderValue {
        self.clear(&self.name)
    }

    /// `Set-Cookie` for a PKCE verifier cookie: ten minutes, and `Strict` relaxed to `Lax` so
    /// the cookie survives the top-level redirect back from the sign-in page.
    pub fn verifier(&self, name: &str, sealed: &str) -> HeaderValue {
        let same_site = match self.same_site {
            SameSite::Strict => SameSite::Lax,
            other => other,
        };
        self.build(name, sealed, VERIFIER_MAX_AGE, same_site)
    }

    /// `Set-Cookie` that deletes the cookie `name` (same path, domain and flags).
    pub fn clear(&self, name: &str) -> HeaderValue {
        let mut value = self.cookie(name, "", Duration::ZERO, self.same_site);
        value.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
        header_value(&value)
    }

    fn build(
        &self,
        name: &str,
        value: &str,
        max_age: Duration,
        same_site: SameSite,
    ) -> HeaderValue {
        header_value(&self.cookie(name, value, max_age, same_site))
    }

    fn cookie<'a>(
        &self,
        name: &'a str,
        value: &'a str,
        max_age: Duration,
        same_site: SameSite,
    ) -> Cookie<'a> {
        let mut c = Cookie::new(name, value);
        c.set_path("/");
        c.set_http_only(true);
        c.set_secure(self.secure);
        c.set_same_site(match same_site {
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::None => cookie::SameSite::None,
        });
        let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        c.set_max_age(cookie::time::Duration::seconds(seconds));
        if let Some(domain) = &self.domain {
            c.set_domain(domain.clone());
        }
        c
    }
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // Names come from configuration and values are iron seals (base64url, `*`, `~`, `.`), so
    // the rendered cookie is always a valid header value; fall back to a deletion rather than
    // panicking if a caller ever hands us something else.
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid-cookie=; Max-Age=0; Path=/"))
}

fn is_loopback_host(host: Option<&str>) -> bool {
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]" | "::1"))
}

/// Reads the cookie `name` from a request's `Cookie` headers.
///
/// Works on bytes and validates only the value it returns: a session cookie makes the
/// header 2-4 KB, and checking every byte of it as `HeaderValue::to_str` does costs more
/// than finding the pair. A value that is not UTF-8 reads as absent; any other junk in it
/// is refused by whatever opens it (the seal's base64 and MAC).
pub fn read_cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    cookie_pairs(headers)
        .find(|(n, _)| *n == name.as_bytes())
        // A session cookie is ~2-4 KB and read on every request: simdutf8's vectorised
        // check costs about half of `std::str::from_utf8`'s.
        .and_then(|(_, value)| simdutf8::basic::from_utf8(value).ok())
}

/// Names of every cookie in the request that starts with `prefix`. Reads the headers the
/// way [`read_cookie`] does, so the two never disagree about what a request carries.
pub fn cookie_names_with_prefix(headers: &http::HeaderMap, prefix: &str) -> Vec<String> {
    cookie_pairs(headers)
        .filter_map(|(name, _)| std::str::from_utf8(name).ok())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Every `name=value` pair of a request's `Cookie` headers, in order, as raw bytes (pairs
/// trimmed of ASCII whitespace; a pair without `=` is skipped).
fn cookie_pairs(headers: &http::HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| SplitSemicolons(v.as_bytes()))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = memchr::memchr(b'=', pair)?;
            Some((&pair[..eq], &pair[eq + 1..]))
        })
}

/// Splits at `;` with memchr (the slice `split` tests byte by byte).
struct SplitSemicolons<'v>(&'v [u8]);

impl<'v> Iterator for SplitSemicolons<'v> {
    type Item = &'v [u8];

    fn next(&mut self) -> Option<&'v [u8]> {
        if self.0.is_empty() {
            return None;
        }
        match memchr::memchr(b';', self.0) {
            Some(at) => {
                let (part, rest) = (&self.0[..at], &self.0[at + 1..]);
                self.0 = rest;
                Some(part)
            }
            None => Some(std::mem::take(&mut self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authkit::config::AuthKitConfigBuilder;

    fn settings(redirect: &str) -> CookieSettings {
        configured(|b| b.redirect_uri(redirect))
    }

    #[test]
    fn session_cookie_has_safe_attributes_on_https() {
        let v = settings("https://app.example.com/callback").session("Fe26.2*1*x~2");
        let v = v.to_str().unwrap();
        assert!(v.starts_with("wos-session=Fe26.2*1*x~2"));
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=34560000",
        ] {
            assert!(v.contains(attr), "{v} lacks {attr}");
        }
    }

    #[test]
    fn loopback_http_redirect_drops_secure_only_there() {
        let local = settings("http://localhost:3000/callback").session("x");
        assert!(!local.to_str().unwrap().contains("Secure"));
        let plain = settings("http://app.example.com/callback").session("x");
        assert!(plain.to_str().unwrap().contains("Secure"));
    }

    fn configured(f: impl FnOnce(AuthKitConfigBuilder) -> AuthKitConfigBuilder) -> CookieSettings {
        let builder = AuthKitConfig::builder()
            .client_id("client_test")
            .api_key("sk_test_x")
            .cookie_password("a-very-long-cookie-password-of-at-least-32-chars")
            .redirect_uri("http://localhost:3000/callback");
        CookieSettings::from_config(&f(builder).build().unwrap())
    }

    #[test]
    fn the_configured_domain_is_on_every_cookie_written_or_cleared() {
        let s = configured(|b| b.cookie_domain("example.com"));
        for v in [
            s.session("x"),
            s.clear_session(),
            s.verifier("wos-auth-verifier-0a0b0c0d", "s"),
            s.clear("wos-auth-verifier-0a0b0c0d"),
        ] {
            assert!(v.to_str().unwrap().contains("Domain=example.com"), "{v:?}");
        }
        let none = configured(|b| b).session("x");
        assert!(!none.to_str().unwrap().contains("Domain="), "{none:?}");
    }

    #[test]
    fn samesite_none_is_secure_even_on_loopback_http() {
        let s = configured(|b| b.cookie_same_site(SameSite::None));
        let v = s.session("x");
        let v = v.to_str().unwrap();
        assert!(v.contains("SameSite=None") && v.contains("Secure"), "{v}");
    }

    #[test]
    fn a_strict_session_cookie_gets_a_lax_verifier_cookie() {
        let s = configured(|b| b.cookie_same_site(SameSite::Strict));
        assert!(s.session("x").to_str().unwrap().contains("SameSite=Strict"));
        let v = s.verifier("wos-auth-verifier-0a0b0c0d", "s");
        assert!(v.to_str().unwrap().contains("SameSite=Lax"), "{v:?}");
    }

    #[test]
    fn clearing_expires_the_cookie_immediately() {
        let v = settings("https://a.example/cb").clear_session();
        let v = v.to_str().unwrap();
        assert!(v.contains("Max-Age=0"));
        assert!(v.contains("1970"));
    }

    #[test]
    fn verifier_cookie_lives_ten_minutes() {
        let v = settings("https://a.example/cb").verifier("wos-auth-verifier-0a0b0c0d", "s");
        assert!(v.to_str().unwrap().contains("Max-Age=600"));
    }

    #[test]
    fn reads_cookies_across_headers() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            HeaderValue::from_static("a=1; wos-session=abc"),
        );
        h.append(
            http::header::COOKIE,
            HeaderValue::from_static("wos-auth-verifier-1=z"),
        );
        assert_eq!(read_cookie(&h, "wos-session"), Some("abc"));
        assert_eq!(read_cookie(&h, "wos-auth-verifier-1"), Some("z"));
        assert_eq!(read_cookie(&h, "missing"), None);
        assert_eq!(
            cookie_names_with_prefix(&h, "wos-auth-verifier"),
            ["wos-auth-verifier-1"]
        );
    }

    #[test]
    fn cookie_names_match_whole_names_only() {
        let h = |v: &'static [u8]| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::COOKIE, HeaderValue::from_bytes(v).unwrap());
            h
        };
        let one = h(b"wos-session-x=1;wos-session = 2;  wos-session=3 ; wos-session=4");
        assert_eq!(
            read_cookie(&one, "wos-session"),
            Some("3"),
            "first exact name wins"
        );
        assert_eq!(read_cookie(&one, "wos-session-x"), Some("1"));
        assert_eq!(read_cookie(&one, "wos"), None, "a prefix is not a name");
        assert_eq!(read_cookie(&h(b"a=1;;b="), "b"), Some(""));
        assert_eq!(read_cookie(&h(b"a=1;"), "a"), Some("1"));
        assert_eq!(read_cookie(&h(b"s=x=y"), "s"), Some("x=y"));
        assert_eq!(
            read_cookie(&h(b"s=\xff\xfe; t=ok"), "s"),
            None,
            "a value that is not UTF-8 reads as absent"
        );
        assert_eq!(read_cookie(&h(b"s=\xff\xfe; t=ok"), "t"), Some("ok"));
        // Both readers see the same cookies, junk from another app next to them or not.
        let mixed = h(b"other=caf\xc3\xa9; wos-auth-verifier-1=z; wos-auth-verifier-2=y");
        assert_eq!(read_cookie(&mixed, "wos-auth-verifier-1"), Some("z"));
        assert_eq!(
            cookie_names_with_prefix(&mixed, "wos-auth-verifier"),
            ["wos-auth-verifier-1", "wos-auth-verifier-2"]
        );
    }
}
