//! PKCE (RFC 7636, S256), the sealed OAuth `state`, the per-flow verifier cookie, and the
//! authorize URL.
//!
//! authkit-nextjs 3.x/4.x (wire spec §5.5), which we match so the two can share a domain:
//!
//! 1. on sign-in, generate a PKCE verifier and seal `{nonce, codeVerifier, customState?,
//!    returnPathname?}` with a 600 s ttl; the **whole seal string is the OAuth `state`**;
//! 2. store the same seal in cookie `wos-auth-verifier-<fnv1a32(state) hex>` (10 minutes,
//!    one per flow so two tabs do not clash; at most 5 kept);
//! 3. on the callback, the cookie named after the returned `state` must exist and equal the
//!    `state` byte for byte; then it is unsealed (ttl checked) and its `codeVerifier` goes
//!    into the code exchange.
//!
//! The binding of `state` to a cookie in this browser is the CSRF defence; the seal makes
//! the verifier and return path tamper-proof.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;

use crate::return_to::ReturnPath;
use crate::seal::{self, Passwords, SealError, Sealed};

/// How long a sealed state (and its cookie) is valid.
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// Prefix of the per-flow verifier cookie name.
pub const VERIFIER_COOKIE_PREFIX: &str = "wos-auth-verifier";
/// The legacy single verifier cookie name, still read as a fallback by authkit-nextjs.
pub const LEGACY_VERIFIER_COOKIE: &str = "wos-auth-verifier";
/// authkit-nextjs expires all other verifier cookies once this many exist.
pub const MAX_VERIFIER_COOKIES: usize = 5;

/// A PKCE code verifier: 43 characters of base64url (32 random bytes). Secret until the
/// code exchange; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

/// A verifier string that is not 43–128 characters of `[A-Za-z0-9-._~]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PKCE verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")]
pub struct InvalidVerifier;

impl CodeVerifier {
    /// 32 bytes from the system CSPRNG, base64url-encoded (43 characters).
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SealError::Random)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps an existing verifier after checking RFC 7636's alphabet and length.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidVerifier> {
        let value = value.into();
        let ok = (43..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if ok {
            Ok(Self(value))
        } else {
            Err(InvalidVerifier)
        }
    }

    /// `base64url(SHA-256(verifier))`, for `code_challenge` with method `S256`.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, self.0.as_bytes()))
    }

    /// The verifier, for `code_verifier` in the code exchange.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier(<redacted>)")
    }
}

/// What the OAuth `state` seal holds (authkit-nextjs's schema, camelCase).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PkceState {
    /// A random UUID making every state unique.
    pub nonce: String,
    /// The PKCE verifier for the code exchange.
    pub code_verifier: String,
    /// Opaque state of the app, returned after sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_state: Option<String>,
    /// Where to go after sign-in. Re-validate with [`PkceState::return_path`] before use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_pathname: Option<String>,
}

impl fmt::Debug for PkceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkceState")
            .field("nonce", &self.nonce)
            .field("code_verifier", &"<redacted>")
            .field("custom_state", &self.custom_state)
            .field("return_pathname", &self.return_pathname)
            .finish()
    }
}

impl PkceState {
    /// A fresh state with a new nonce and verifier.
    pub fn generate(
        custom_state: Option<String>,
        return_path: Option<&ReturnPath>,
    ) -> Result<(Self, CodeVerifier), SealError> {
        let verifier = CodeVerifier::generate()?;
        let state = Self {
            nonce: random_uuid()?,
            code_verifier: verifier.expose().to_owned(),
            custom_state,
            return_pathname: return_path.map(|p| p.as_str().to_owned()),
        };
        Ok((state, verifier))
    }

    /// Seals this state with a 600 s ttl; the result is both the OAuth `state` parameter and
    /// the verifier cookie's value.
    pub fn seal(&self, passwords: &Passwords, now: SystemTime) -> Result<Sealed, SealError> {
        seal::seal_json(self, passwords, Some(STATE_TTL), now)
    }

    /// The verifier, checked.
    pub fn code_verifier(&self) -> Result<CodeVerifier, InvalidVerifier> {
        CodeVerifier::new(self.code_verifier.clone())
    }

    /// The return path, if present and still a safe relative path (a state sealed by
    /// another app sharing the password might hold anything).
    pub fn return_path(&self) -> Option<ReturnPath> {
        self.return_pathname
            .as_deref()
            .and_then(|p| ReturnPath::parse(p).ok())
    }
}

/// A version 4 UUID from the system CSPRNG (authkit-nextjs uses `crypto.randomUUID()`).
fn random_uuid() -> Result<String, SealError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| SealError::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// 32-bit FNV-1a of `bytes`.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// `wos-auth-verifier-<8 lowercase hex of fnv1a32(state)>`: the cookie holding this flow's
/// sealed state.
pub fn verifier_cookie_name(state: &str) -> String {
    format!("{VERIFIER_COOKIE_PREFIX}-{:08x}", fnv1a32(state.as_bytes()))
}

/// Why a callback's `state` was refused. [`CallbackError::code`] gives authkit-nextjs's code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// No `state` (or no `code`) on the callback.
    #[error("callback is missing code or state")]
    MissingAuthParams,
    /// No verifier cookie for this `state`: another browser, an expired cookie, or a forged
    /// link.
    #[error("no PKCE verifier cookie for this state")]
    MissingPkceCookie,
    /// The cookie does not equal the `state`.
    #[error("state does not match the verifier cookie")]
    StateMismatch,
    /// The state did not unseal (tampered, expired after 10 minutes, other password) or does
    /// not hold a valid PKCE state.
    #[error("state is invalid: {0}")]
    InvalidState(#[from] SealError),
}

impl CallbackError {
    /// authkit-nextjs's `CallbackError` code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            CallbackError::MissingAuthParams => "missing_auth_params",
            CallbackError::MissingPkceCookie => "missing_pkce_cookie",
            CallbackError::StateMismatch | CallbackError::InvalidState(_) => "oauth_state_mismatch",
        }
    }
}

/// Checks a callback's `state` against the verifier cookie found under
/// [`verifier_cookie_name`]`(state)` and returns the unsealed state.
///
/// Both must be present and byte-equal (compared in constant time); the seal must open with
/// `passwords` and be younger than 600 s (+60 s iron skew). The caller deletes the flow's
/// verifier cookie whatever the outcome.
pub fn verify_callback_state(
    state: Option<&str>,
    cookie_value: Option<&str>,
    passwords: &Passwords,
    now: SystemTime,
) -> Result<PkceState, CallbackError> {
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or(CallbackError::MissingAuthParams)?;
    let cookie = cookie_value
        .filter(|c| !c.is_empty())
        .ok_or(CallbackError::MissingPkceCookie)?;
    if !bool::from(state.as_bytes().ct_eq(cookie.as_bytes())) {
        return Err(CallbackError::StateMismatch);
    }
    let pkce: PkceState = seal::unseal_json(state, passwords, now)?;
    if pkce.code_verifier().is_err() || pkce.nonce.is_empty() {
        return Err(CallbackError::InvalidState(SealError::Malformed(
            "state holds no valid PKCE verifier",
        )));
    }
    Ok(pkce)
}

/// `screen_hint` of the hosted AuthKit page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenHint {
    /// `sign-in` (the default page).
    SignIn,
    /// `sign-up`.
    SignUp,
}

impl ScreenHint {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScreenHint::SignIn => "sign-in",
            ScreenHint::SignUp => "sign-up",
        }
    }
}

/// Builds `GET /user_management/authorize` URLs the way `@workos-inc/node` does: keys
/// sorted, values form-encoded (space as `+`, everything but `A-Z a-z 0-9 - _ . ~ ( )`
/// percent-encoded with upper-case hex), so URLs can be compared as strings in tests.
///
/// ```
/// use authkit::pkce::{AuthorizationUrl, ScreenHint};
/// let endpoint = url::Url::parse("https://api.workos.com/user_management/authorize").unwrap();
/// let url = AuthorizationUrl::new("client_1", "http://localhost:3000/callback", "st", "ch")
///     .screen_hint(ScreenHint::SignUp)
///     .to_url(&endpoint);
/// assert_eq!(url.as_str(), "https://api.workos.com/user_management/authorize?\
///     client_id=client_1&code_challenge=ch&code_challenge_method=S256&provider=authkit&\
///     redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&response_type=code&\
///     screen_hint=sign-up&state=st");
/// ```
#[derive(Debug, Clone)]
pub struct AuthorizationUrl {
    params: Vec<(&'static str, String)>,
}

impl AuthorizationUrl {
    /// The required parameters; `provider=authkit`, `response_type=code` and
    /// `code_challenge_method=S256` are added.
    pub fn new(
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
        state: impl Into<String>,
        code_challenge: impl Into<String>,
    ) -> Self {
        let mut s = Self { params: Vec::new() };
        s.set("client_id", client_id.into());
        s.set("redirect_uri", redirect_uri.into());
        s.set("state", state.into());
        s.set("code_challenge", code_challenge.into());
        s.set("code_challenge_method", "S256".into());
        s.set("response_type", "code".into());
        s.set("provider", "authkit".into());
        s
    }

    fn set(&mut self, key: &'static str, value: String) {
        self.params.retain(|(k, _)| *k != key);
        self.params.push((key, value));
    }

    /// `screen_hint`.
    pub fn screen_hint(mut self, hint: ScreenHint) -> Self {
        self.set("screen_hint", hint.as_str().into());
        self
    }
    /// `login_hint` (an email address to pre-fill).
    pub fn login_hint(mut self, email: impl Into<String>) -> Self {
        self.set("login_hint", email.into());
        self
    }
    /// `organization_id` (sign in to this organization).
    pub fn organization_id(mut self, id: impl Into<String>) -> Self {
        self.set("organization_id", id.into());
        self
    }
    /// `prompt` (e.g. `login`, `consent`).
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.set("prompt", prompt.into());
        self
    }
    /// `max_age` in seconds (`0` forces re-authentication).
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.set("max_age", seconds.to_string());
        self
    }
    /// `domain_hint` (SSO connection lookup by domain).
    pub fn domain_hint(mut self, domain: impl Into<String>) -> Self {
        self.set("domain_hint", domain.into());
        self
    }

    /// The query string, keys sorted.
    pub fn query(&self) -> String {
        let mut params: Vec<_> = self.params.iter().collect();
        params.sort_by(|a, b| a.0.cmp(b.0));
        params
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `endpoint` (normally [`crate::config::AuthKitConfig::authorize_url`]) with the query.
    pub fn to_url(&self, endpoint: &Url) -> Url {
        let mut url = endpoint.clone();
        url.set_query(Some(&self.query()));
        url
    }
}

/// `qs.stringify(…, {format: 'RFC1738'})` value encoding, as `@workos-inc/node` uses.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'(' | b')' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Options for [`start_authorization`]; all optional.
#[derive(Debug, Clone, Default)]
pub struct SignInOptions {
    /// `sign-in` or `sign-up` page.
    pub screen_hint: Option<ScreenHint>,
    /// Email to pre-fill.
    pub login_hint: Option<String>,
    /// Organization to sign in to.
    pub organization_id: Option<String>,
    /// OIDC `prompt`.
    pub prompt: Option<String>,
    /// OIDC `max_age` seconds.
    pub max_age: Option<u64>,
    /// Domain for SSO lookup.
    pub domain_hint: Option<String>,
    /// App state returned after sign-in (travels sealed).
    pub custom_state: Option<String>,
    /// Where to go after sign-in.
    pub return_path: Option<ReturnPath>,
}

/// Everything a sign-in redirect needs: send the browser to `url` and set cookie
/// `cookie_name = state` (HttpOnly, Max-Age 600, SameSite Lax unless configured None).
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    /// The authorize URL to redirect to.
    pub url: Url,
    /// The sealed state: the `state` parameter and the cookie value.
    pub state: Sealed,
    /// `wos-auth-verifier-<hash>`.
    pub cookie_name: String,
    /// The verifier (also inside `state`).
    pub code_verifier: CodeVerifier,
}

/// Generates PKCE + sealed state and builds the authorize URL in one step.
pub fn start_authorization(
    authorize_endpoint: &Url,
    client_id: &str,
    redirect_uri: &Url,
    options: &SignInOptions,
    passwords: &Passwords,
    now: SystemTime,
) -> Result<AuthorizationStart, SealError> {
    let (pkce, verifier) =
        PkceState::generate(options.custom_state.clone(), options.return_path.as_ref())?;
    let state = pkce.seal(passwords, now)?;
    let mut b = AuthorizationUrl::new(
        client_id,
        redirect_uri.as_str(),
        state.as_str(),
        verifier.challenge(),
    );
    if let Some(h) = options.screen_hint {
        b = b.screen_hint(h);
    }
    if let Some(v) = &options.login_hint {
        b = b.login_hint(v.clone());
    }
    if let Some(v) = &options.organization_id {
        b = b.organization_id(v.clone());
    }
    if let Some(v) = &options.prompt {
        b = b.prompt(v.clone());
    }
    if let Some(v) = options.max_age {
        b = b.max_age(v);
    }
    if let Some(v) = &options.domain_hint {
        b = b.domain_hint(v.clone());
    }
    Ok(AuthorizationStart {
        url: b.to_url(authorize_endpoint),
        cookie_name: verifier_cookie_name(state.as_str()),
        state,
        code_verifier: verifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const PW: &str = "this-is-a-test-password-of-32+chars!!";

    fn pw() -> Passwords {
        Passwords::single(PW).unwrap()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn rfc7636_s256_vector() {
        let v = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn generated_verifiers_are_43_chars_and_distinct() {
        let a = CodeVerifier::generate().unwrap();
        let b = CodeVerifier::generate().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert!(CodeVerifier::new(a.expose()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn verifier_alphabet_and_length_are_checked() {
        assert!(CodeVerifier::new("short").is_err());
        assert!(CodeVerifier::new("a".repeat(129)).is_err());
        assert!(CodeVerifier::new(format!("{}+", "a".repeat(43))).is_err());
        assert!(CodeVerifier::new("a".repeat(128)).is_ok());
    }

    #[test]
    fn fnv1a_cookie_name_vector() {
        assert_eq!(
            verifier_cookie_name("Fe26.2*1*abc"),
            "wos-auth-verifier-fda85087"
        );
        // Zero padding to eight hex digits.
        assert_eq!(format!("{:08x}", 0x1_u32), "00000001");
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
    }

    #[test]
    fn uuid_is_version_4() {
        let u = random_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn state_round_trips_through_the_callback_check() {
        let rp = ReturnPath::parse("/orgs?tab=1").unwrap();
        let (st, _) = PkceState::generate(Some("app".into()), Some(&rp)).unwrap();
        let sealed = st.seal(&pw(), now()).unwrap();
        let got = verify_callback_state(
            Some(sealed.as_str()),
            Some(sealed.as_str()),
            &pw(),
            now() + Duration::from_secs(599),
        )
        .unwrap();
        assert_eq!(got, st);
        assert_eq!(got.return_path().unwrap().as_str(), "/orgs?tab=1");
        assert_eq!(got.custom_state.as_deref(), Some("app"));
    }

    #[test]
    fn state_json_uses_authkit_nextjs_keys() {
        let st = PkceState {
            nonce: "n".into(),
            code_verifier: "v".into(),
            custom_state: None,
            return_pathname: Some("/x".into()),
        };
        assert_eq!(
            serde_json::to_string(&st).unwrap(),
            r#"{"nonce":"n","codeVerifier":"v","returnPathname":"/x"}"#
        );
    }

    #[test]
    fn callback_failures_have_authkit_nextjs_codes() {
        let (st, _) = PkceState::generate(None, None).unwrap();
        let sealed = st.seal(&pw(), now()).unwrap();
        let s = sealed.as_str();
        let err = |state, cookie, at| verify_callback_state(state, cookie, &pw(), at).unwrap_err();

        assert_eq!(err(None, Some(s), now()).code(), "missing_auth_params");
        assert_eq!(err(Some(""), Some(s), now()).code(), "missing_auth_params");
        assert_eq!(err(Some(s), None, now()).code(), "missing_pkce_cookie");
        let (other, _) = PkceState::generate(None, None).unwrap();
        let other = other.seal(&pw(), now()).unwrap();
        let e = err(Some(s), Some(other.as_str()), now());
        assert!(matches!(e, CallbackError::StateMismatch));
        assert_eq!(e.code(), "oauth_state_mismatch");
        // Expired: 600 s ttl + 60 s skew.
        let e = err(Some(s), Some(s), now() + Duration::from_secs(660));
        assert!(matches!(e, CallbackError::InvalidState(SealError::Expired)));
        // Sealed with another password.
        let foreign = Passwords::single("another-password-of-at-least-32-chars").unwrap();
        let f = st.seal(&foreign, now()).unwrap();
        let e = err(Some(f.as_str()), Some(f.as_str()), now());
        assert!(matches!(e, CallbackError::InvalidState(SealError::BadMac)));
        // A seal that is not a PKCE state (e.g. a session cookie) is refused.
        let sess =
            seal::seal_json(&serde_json::json!({"accessToken": "x"}), &pw(), None, now()).unwrap();
        let e = err(Some(sess.as_str()), Some(sess.as_str()), now());
        assert!(matches!(e, CallbackError::InvalidState(SealError::Json(_))));
        // Garbage.
        let e = err(Some("x"), Some("x"), now());
        assert!(matches!(e, CallbackError::InvalidState(_)));
    }

    #[test]
    fn sealed_return_path_is_revalidated() {
        let st = PkceState {
            nonce: "n".into(),
            code_verifier: "v".repeat(43),
            custom_state: None,
            return_pathname: Some("//evil.com".into()),
        };
        assert!(st.return_path().is_none());
    }

    #[test]
    fn authorization_url_is_sorted_and_node_encoded() {
        let endpoint = Url::parse("https://api.workos.com/user_management/authorize").unwrap();
        let url = AuthorizationUrl::new(
            "client_1",
            "https://app.example/callback",
            "Fe26.2*1*a~2",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .screen_hint(ScreenHint::SignIn)
        .login_hint("a b+c@example.com")
        .organization_id("org_1")
        .prompt("login")
        .max_age(0)
        .domain_hint("example.com")
        .to_url(&endpoint);
        assert_eq!(
            url.as_str(),
            "https://api.workos.com/user_management/authorize?client_id=client_1\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256&domain_hint=example.com\
             &login_hint=a+b%2Bc%40example.com&max_age=0&organization_id=org_1\
             &prompt=login&provider=authkit\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&response_type=code\
             &screen_hint=sign-in&state=Fe26.2%2A1%2Aa~2"
        );
        // The state survives the round trip through a query parser.
        let state = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned());
        assert_eq!(state.as_deref(), Some("Fe26.2*1*a~2"));
    }

    #[test]
    fn form_encoding_matches_qs_rfc1738() {
        assert_eq!(form_encode("a b!'*()~._-é"), "a+b%21%27%2A()~._-%C3%A9");
    }

    #[test]
    fn start_authorization_binds_url_state_cookie_and_verifier() {
        let endpoint = Url::parse("http://localhost:8484/user_management/authorize").unwrap();
        let redirect = Url::parse("http://localhost:3000/callback").unwrap();
        let opts = SignInOptions {
            screen_hint: Some(ScreenHint::SignUp),
            return_path: Some(ReturnPath::parse("/after").unwrap()),
            ..Default::default()
        };
        let start =
            start_authorization(&endpoint, "client_1", &redirect, &opts, &pw(), now()).unwrap();
        let q: std::collections::HashMap<_, _> = start.url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], start.state.as_str());
        assert_eq!(q["code_challenge"], start.code_verifier.challenge());
        assert_eq!(q["screen_hint"], "sign-up");
        assert_eq!(
            start.cookie_name,
            verifier_cookie_name(start.state.as_str())
        );
        let back =
            verify_callback_state(Some(&q["state"]), Some(start.state.as_str()), &pw(), now())
                .unwrap();
        assert_eq!(back.code_verifier, start.code_verifier.expose());
        assert_eq!(back.return_path().unwrap().as_str(), "/after");
        // The state expires: ttl field = now + 600 000 ms.
        let exp = start.state.iron_seal().split('*').nth(5).unwrap();
        assert_eq!(exp, "1700000600000");
    }

    #[test]
    fn debug_hides_the_verifier() {
        let (st, v) = PkceState::generate(None, None).unwrap();
        let d = format!("{st:?} {v:?}");
        assert!(!d.contains(v.expose()));
    }
}
