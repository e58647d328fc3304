//! Shared fixtures for the authkit benchmarks: one RSA-2048 key, a WorkOS-shaped access
//! token it signed, and a ~1.5 KB session cookie sealed around that token.
//!
//! Every benchmark in `benches/` measures authkit next to a floor or a peer on *the same
//! bytes*: the raw aws-lc-rs RSA verify runs over the very signing input the verifier
//! checks, jsonwebtoken decodes the very token, and the Node peer (`scripts/iron_peer.mjs`)
//! unseals the very cookie (exported by the `fixture` binary). [`Fixture::new`] generates the
//! key once (about 0.1 s); benchmarks build one fixture per process, so `cargo test
//! --all-targets`, which runs each benchmark once, stays fast.
//!
//! The token imitates a production WorkOS access token (wire spec §3): a
//! `sso_oidc_key_pair_<ULID>` kid, the per-client issuer, `sid`, `jti`, `org_id`, `role`,
//! `permissions`: 901 bytes in all, like the 915-byte token of perf-security §A1. Its
//! lifetime is one hour rather than WorkOS's five minutes so a long benchmark run never sees
//! it expire; the token's length is the same either way. The session JSON is 1,535 bytes
//! (§A1: 1,517) and seals to a 2,257-character cookie (§A1: 2,206).
//!
//! Signing is done here with aws-lc-rs directly rather than with jsonwebtoken so the
//! fixture does not depend on either of the libraries being compared.

pub mod report;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authkit::auth::{AuthKit, AuthKitBuildError};
use authkit::config::{AuthKitConfig, ConfigError};
use authkit::jwks::{KeyRejected, KeySet, VerifyingKey};
use authkit::seal::{PasswordError, Passwords, SealError};
use authkit::session::{Session, SessionCookie, User};
use authkit::verifier::{BuildError, Verifier};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The client id the fixture token was issued for.
pub const CLIENT_ID: &str = "client_01JXWR78G1RS943SJZG9G9KFDW";
/// The issuer of the fixture token (WorkOS's per-client form).
pub const ISSUER: &str = "https://api.workos.com/user_management/client_01JXWR78G1RS943SJZG9G9KFDW";
/// The fixture user (`sub` of the token, id of the session's user).
pub const USER_ID: &str = "user_01K4EZC631GGHFKB5VXEARPB0G";
/// The key id, shaped like production's.
pub const KID: &str = "sso_oidc_key_pair_01JXWR786PFV2T6FAANMCKF8TT";
/// The cookie password (iron-session wants at least 32 characters).
pub const COOKIE_PASSWORD: &str = "bench-cookie-password-0123456789-abcdefghij";
/// Lifetime of the fixture token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Why a fixture could not be built. Only a broken crypto library produces one of these.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// aws-lc-rs refused to generate or use the RSA key.
    #[error("RSA key operation failed")]
    Rsa,
    /// authkit refused the public key.
    #[error("authkit refused the key: {0}")]
    Key(#[from] KeyRejected),
    /// authkit refused the verifier configuration.
    #[error("verifier: {0}")]
    Verifier(#[from] BuildError),
    /// The cookie password was refused.
    #[error("cookie password: {0}")]
    Password(#[from] PasswordError),
    /// Sealing failed.
    #[error("seal: {0}")]
    Seal(#[from] SealError),
    /// The system clock is before 1970.
    #[error("system clock is before the Unix epoch")]
    Clock,
    /// The exported fixture file could not be read.
    #[error("cannot read fixture file {path}: {source}")]
    Io {
        /// The file named by [`FIXTURE_ENV`].
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The exported fixture is not what [`Fixture::export_json`] writes.
    #[error("bad fixture export: {0}")]
    Export(&'static str),
    /// authkit refused the web configuration.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// authkit refused to build.
    #[error("authkit: {0}")]
    AuthKit(#[from] AuthKitBuildError),
}

/// Environment variable naming a fixture file written by the `fixture` binary. When set,
/// [`Fixture::from_env`] loads it, so the Rust benchmarks and the Node peer work on the
/// byte-identical token and cookie.
pub const FIXTURE_ENV: &str = "AUTHKIT_BENCH_FIXTURE";

/// One key, one token, one session cookie; see the module docs.
pub struct Fixture {
    pair: RsaKeyPair,
    rng: SystemRandom,
    iat: u64,
    token: String,
    session: Session,
    cookie: String,
}

impl Fixture {
    /// Generates an RSA-2048 key, mints the token (issued now, valid for
    /// [`TOKEN_LIFETIME`]) and seals the session cookie.
    pub fn new() -> Result<Self, FixtureError> {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| FixtureError::Rsa)?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| FixtureError::Clock)?
            .as_secs();
        let mut fixture = Self {
            pair,
            rng: SystemRandom::new(),
            iat,
            token: String::new(),
            session: Session::new("", ""),
            cookie: String::new(),
        };
        fixture.token = fixture.mint(&fixture.claims(USER_ID))?;
        fixture.session = session_for(&fixture.token);
        fixture.cookie = fixture
            .session_cookie()?
            .seal(&fixture.session, SystemTime::now())?
            .into_string();
        Ok(fixture)
    }

    /// Loads the fixture file named by [`FIXTURE_ENV`] when that variable is set, else
    /// generates a fresh one with [`Fixture::new`].
    pub fn from_env() -> Result<Self, FixtureError> {
        match std::env::var(FIXTURE_ENV) {
            Ok(path) if !path.is_empty() => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| FixtureError::Io { path, source })?;
                Self::from_export(&text)
            }
            _ => Self::new(),
        }
    }

    /// Rebuilds a fixture from [`Fixture::export_json`] output (same key, token and cookie
    /// bytes).
    pub fn from_export(json: &str) -> Result<Self, FixtureError> {
        let v: Value = serde_json::from_str(json).map_err(|_| FixtureError::Export("not JSON"))?;
        let text = |name: &'static str| {
            v.get(name)
                .and_then(Value::as_str)
                .ok_or(FixtureError::Export(name))
        };
        let pkcs8 = URL_SAFE_NO_PAD
            .decode(text("pkcs8")?)
            .map_err(|_| FixtureError::Export("pkcs8"))?;
        let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| FixtureError::Rsa)?;
        let iat = v
            .get("iat")
            .and_then(Value::as_u64)
            .ok_or(FixtureError::Export("iat"))?;
        let session: Session = serde_json::from_str(text("session_json")?)
            .map_err(|_| FixtureError::Export("session_json"))?;
        Ok(Self {
            pair,
            rng: SystemRandom::new(),
            iat,
            token: text("token")?.to_owned(),
            session,
            cookie: text("cookie")?.to_owned(),
        })
    }

    /// WorkOS-shaped claims for `sub`, issued at the fixture's time.
    pub fn claims(&self, sub: &str) -> Value {
        json!({
            "iss": ISSUER,
            "sub": sub,
            "sid": "session_01K4EZC6PYSEB5JWSKFDZFGWDB",
            "jti": "01K4EZCJYF91797FMG152DW48H",
            "org_id": "org_01K4EZ9Q3M7XB8S2C5VJ6N1TRD",
            "role": "admin",
            "permissions": ["users:read", "users:write", "billing:read"],
            "exp": self.iat + TOKEN_LIFETIME.as_secs(),
            "iat": self.iat,
        })
    }

    /// Signs `claims` as an RS256 compact JWS with the fixture key and [`KID`].
    pub fn mint(&self, claims: &Value) -> Result<String, FixtureError> {
        // WorkOS's header has no `typ`.
        let header = json!({"alg": "RS256", "kid": KID});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
            .map_err(|_| FixtureError::Rsa)?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The fixture access token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `header.payload` of the token: the bytes the signature covers.
    pub fn signing_input(&self) -> &str {
        self.token
            .rsplit_once('.')
            .map_or(self.token.as_str(), |(input, _)| input)
    }

    /// The raw signature bytes of the token.
    pub fn signature(&self) -> Vec<u8> {
        self.token
            .rsplit_once('.')
            .and_then(|(_, sig)| URL_SAFE_NO_PAD.decode(sig).ok())
            .unwrap_or_default()
    }

    /// The RSA modulus, big-endian without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        self.pair
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
    }

    /// The RSA public exponent, big-endian without leading zeros.
    pub fn exponent(&self) -> &[u8] {
        self.pair
            .public_key()
            .exponent()
            .big_endian_without_leading_zero()
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (what `UnparsedPublicKey` takes).
    pub fn public_key_der(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public key as a JWKS document, shaped like `GET /sso/jwks/{client_id}`.
    pub fn jwks_json(&self) -> String {
        json!({"keys": [{
            "alg": "RS256", "kty": "RSA", "use": "sig", "kid": KID,
            "n": URL_SAFE_NO_PAD.encode(self.modulus()),
            "e": URL_SAFE_NO_PAD.encode(self.exponent()),
        }]})
        .to_string()
    }

    /// The fixture key as an authkit key set.
    pub fn key_set(&self) -> Result<KeySet, FixtureError> {
        let key = VerifyingKey::from_rsa_components(KID, self.modulus(), self.exponent())?;
        Ok(KeySet::from_keys([key]))
    }

    /// A verifier over the fixed key set with the given verified-token cache capacity
    /// (0 disables the cache, so every call does the RSA work).
    pub fn verifier(&self, cache_capacity: usize) -> Result<Verifier, FixtureError> {
        Ok(Verifier::builder()
            .key_set(self.key_set()?)
            .issuer(ISSUER)
            .cache_capacity(cache_capacity)
            .build()?)
    }

    /// An [`AuthKit`] that opens the fixture's cookie and verifies with the fixture's key
    /// (verified-token cache of `cache_capacity`). Its API base URL is a closed port: on a
    /// fixture cookie nothing calls WorkOS, since the token is fresh.
    pub fn web_authkit(&self, cache_capacity: usize) -> Result<AuthKit, FixtureError> {
        let config = AuthKitConfig::builder()
            .client_id(CLIENT_ID)
            .api_key("sk_test_bench_never_sent")
            .cookie_password(COOKIE_PASSWORD)
            .redirect_uri("http://127.0.0.1/callback")
            .build()?;
        Ok(AuthKit::builder(config)
            .verifier(self.verifier(cache_capacity)?)
            .api_base_url("http://127.0.0.1:9")
            .build()?)
    }

    /// The session the cookie holds.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The sealed `wos-session` cookie value (`Fe26.2*…~2`).
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// The plaintext JSON inside the cookie.
    pub fn session_json(&self) -> String {
        serde_json::to_string(&self.session).unwrap_or_default()
    }

    /// The cookie sealer/opener for [`COOKIE_PASSWORD`].
    pub fn session_cookie(&self) -> Result<SessionCookie, FixtureError> {
        Ok(SessionCookie::new(
            authkit::session::DEFAULT_COOKIE_NAME,
            Passwords::single(COOKIE_PASSWORD)?,
        ))
    }

    /// The fixture as JSON for the Node peer and [`Fixture::from_export`]: cookie, password,
    /// session JSON, token, JWKS, and the (benchmark-only) private key as PKCS#8.
    pub fn export_json(&self) -> String {
        let pkcs8 = self
            .pair
            .as_der()
            .map(|der| URL_SAFE_NO_PAD.encode(der.as_ref()))
            .unwrap_or_default();
        json!({
            "pkcs8": pkcs8,
            "iat": self.iat,
            "cookie": self.cookie,
            "password": COOKIE_PASSWORD,
            "session_json": self.session_json(),
            "token": self.token,
            "issuer": ISSUER,
            "jwks": serde_json::from_str::<Value>(&self.jwks_json()).unwrap_or(Value::Null),
        })
        .to_string()
    }
}

/// The session authkit-nextjs would seal after a password sign-in: both tokens and the full
/// user object (about 1.5 KB of JSON with a ~900-byte token).
fn session_for(token: &str) -> Session {
    let mut metadata = serde_json::Map::new();
    metadata.insert("department".into(), json!("Engineering"));
    Session {
        access_token: token.to_owned(),
        refresh_token: "Q2hcqM8Ve7gNiPxKYq3TtaBvL0sd4WfR".to_owned(),
        user: Some(User {
            object: "user".into(),
            id: USER_ID.into(),
            email: "ada@analytical-engines.example".into(),
            email_verified: true,
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            name: None,
            profile_picture_url: Some(
                "https://workoscdn.com/images/v1/Hk3oFqLtnUuJ2yCkWnVZbX8aQpRsTe4d".into(),
            ),
            last_sign_in_at: Some("2026-11-23T20:59:12.345Z".into()),
            locale: Some("en-GB".into()),
            created_at: "2024-03-14T09:26:53.589Z".into(),
            updated_at: "2026-11-23T20:59:12.345Z".into(),
            external_id: Some("f1ffa2b2-c20b-4d39-be5c-212726e11222".into()),
            metadata,
        }),
        impersonator: None,
        authentication_method: Some("Password".into()),
        organization_id: Some("org_01K4EZ9Q3M7XB8S2C5VJ6N1TRD".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_token_verifies_and_cookie_opens() {
        let f = Fixture::new().unwrap();
        let v = f.verifier(0).unwrap();
        let claims = v.verify_without_fetch(f.token()).unwrap();
        assert_eq!(claims.sub, USER_ID);
        let opened = f
            .session_cookie()
            .unwrap()
            .unseal(f.cookie(), SystemTime::now())
            .unwrap();
        assert_eq!(&opened, f.session());
    }

    #[test]
    fn fixture_sizes_match_the_spec_workload() {
        let f = Fixture::new().unwrap();
        let token = f.token().len();
        assert!((850..=950).contains(&token), "token is {token} bytes");
        let json = f.session_json().len();
        assert!(
            (1400..=1650).contains(&json),
            "session JSON is {json} bytes"
        );
    }

    #[test]
    fn exported_fixture_reloads_with_identical_bytes() {
        let f = Fixture::new().unwrap();
        let g = Fixture::from_export(&f.export_json()).unwrap();
        assert_eq!(g.token(), f.token());
        assert_eq!(g.cookie(), f.cookie());
        assert_eq!(g.public_key_der(), f.public_key_der());
        assert_eq!(
            g.mint(&g.claims("user_x")).unwrap(),
            f.mint(&f.claims("user_x")).unwrap()
        );
    }

    #[test]
    fn signature_and_input_recombine_into_the_token() {
        let f = Fixture::new().unwrap();
        let sig = URL_SAFE_NO_PAD.encode(f.signature());
        assert_eq!(format!("{}.{sig}", f.signing_input()), f.token());
    }
}
