//! The session cookie payload, as authkit-nextjs seals it, and helpers to seal/unseal it.
//!
//! authkit-nextjs (and `@workos-inc/node`) put camelCase JSON in the `wos-session` cookie
//! (wire spec §5.3):
//!
//! ```json
//! {"accessToken":"<JWT>","refreshToken":"<opaque>",
//!  "user":{"object":"user","id":"user_…","email":"…","emailVerified":true,…},
//!  "impersonator":{"email":"…","reason":"…"}}
//! ```
//!
//! [`Session`] reads and writes exactly that, ignoring keys it does not know (a full
//! `AuthenticationResponse` sealed by `saveSession` carries more). Everything else about the
//! session (session id, organization, role, permissions) must be taken from the *verified*
//! access token, never from this JSON.
//!
//! The WorkOS REST API speaks snake_case; [`ApiUser`] parses that shape and converts into the
//! camelCase [`User`] that goes into the cookie.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::seal::{self, Passwords, SealError, Sealed};

/// Browsers drop a cookie whose name plus value exceeds this many bytes.
pub const MAX_COOKIE_BYTES: usize = 4096;
/// The default session cookie name (`WORKOS_COOKIE_NAME`).
pub const DEFAULT_COOKIE_NAME: &str = "wos-session";

/// What the session cookie holds.
///
/// `Debug` redacts both tokens.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The WorkOS access token (an RS256 JWT). Verify it before trusting anything in it.
    pub access_token: String,
    /// The single-use refresh token.
    pub refresh_token: String,
    /// The signed-in user as WorkOS returned it at sign-in or last refresh. Optional so an app
    /// can keep the cookie small ([`SessionCookie::include_user`]); authkit-nextjs always
    /// writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Present while an admin impersonates the user (from the authenticate response; the
    /// token carries the same fact as its `act` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<Impersonator>,
    /// How the user signed in (`Password`, `GoogleOAuth`, ...), when the writer kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_method: Option<String>,
    /// Organization of the authenticate response, when the writer kept it (`@workos-inc/node`
    /// does). The token's `org_id` claim is authoritative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
}

impl Session {
    /// A session with just the two tokens.
    pub fn new(access_token: impl Into<String>, refresh_token: impl Into<String>) -> Self {
        Self {
            access_token: access_token.into(),
            refresh_token: refresh_token.into(),
            user: None,
            impersonator: None,
            authentication_method: None,
            organization_id: None,
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("user", &self.user)
            .field("impersonator", &self.impersonator)
            .field("authentication_method", &self.authentication_method)
            .field("organization_id", &self.organization_id)
            .finish()
    }
}

fn user_object() -> String {
    "user".to_owned()
}

fn null_as_user_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(user_object))
}

/// A `null` reads as the field's default, as a missing field does: other writers of the
/// cookie (`@workos-inc/node` passes the API's user object through) may send `null` for a
/// field the API documents as always present, and one such field must not make the whole
/// cookie unreadable, which would sign the user out of every app sharing it.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The user object in the cookie: NODE's camelCase form of the API user.
///
/// Reading is lenient (only `id` is required, unknown keys are ignored), because cookies
/// written by other SDK versions carry different subsets; the user is re-read from every
/// authenticate/refresh response, so nothing is lost for long. Optional fields serialise as
/// `null`, as `JSON.stringify` does for NODE's deserialised user. (No `#[serde(flatten)]`
/// catch-all: it would make every request's cookie parse buffer the user twice.)
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Always `"user"`.
    #[serde(default = "user_object", deserialize_with = "null_as_user_object")]
    pub object: String,
    /// `user_…`. Must equal the access token's `sub`; a mismatch means the cookie was
    /// assembled from two sessions and should be treated as signed out.
    pub id: String,
    /// Email address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub email: String,
    /// Whether the email address is verified.
    #[serde(default, deserialize_with = "null_as_default")]
    pub email_verified: bool,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Full display name (newer API versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Avatar URL.
    #[serde(default)]
    pub profile_picture_url: Option<String>,
    /// ISO-8601 time of the last sign-in.
    #[serde(default)]
    pub last_sign_in_at: Option<String>,
    /// Preferred locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// ISO-8601 creation time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: String,
    /// ISO-8601 last update time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub updated_at: String,
    /// The app's own id for this user.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Free-form key/value metadata.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The admin impersonating the user (`impersonator` of the authenticate response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impersonator {
    /// The admin's email address.
    pub email: String,
    /// The reason the admin gave, if any.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A user as the WorkOS REST API returns it (snake_case). Convert with `User::from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiUser {
    /// `"user"`.
    #[serde(default = "user_object")]
    pub object: String,
    /// `user_…`.
    pub id: String,
    /// Email address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub email: String,
    /// Whether the email is verified.
    #[serde(default, deserialize_with = "null_as_default")]
    pub email_verified: bool,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Avatar URL.
    #[serde(default)]
    pub profile_picture_url: Option<String>,
    /// Last sign-in time.
    #[serde(default)]
    pub last_sign_in_at: Option<String>,
    /// Locale.
    #[serde(default)]
    pub locale: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: String,
    /// Update time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub updated_at: String,
    /// External id.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl From<ApiUser> for User {
    fn from(u: ApiUser) -> Self {
        User {
            object: u.object,
            id: u.id,
            email: u.email,
            email_verified: u.email_verified,
            first_name: u.first_name,
            last_name: u.last_name,
            name: u.name,
            profile_picture_url: u.profile_picture_url,
            last_sign_in_at: u.last_sign_in_at,
            locale: u.locale,
            created_at: u.created_at,
            updated_at: u.updated_at,
            external_id: u.external_id,
            metadata: u.metadata.unwrap_or_default(),
        }
    }
}

impl User {
    /// Converts the API's snake_case user JSON (for example `user` of an authenticate
    /// response) into the cookie form.
    pub fn from_api_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        ApiUser::deserialize(value).map(User::from)
    }
}

/// Why a session cookie was not accepted. Every variant means "signed out".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The cookie value is longer than a browser would have kept; refused before any crypto.
    #[error("session cookie is {len} bytes, over {max}")]
    TooLarge {
        /// Value length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The seal did not open or did not hold a session.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// Seals and opens the session cookie: name, passwords and whether to keep the user object.
#[derive(Debug, Clone)]
pub struct SessionCookie {
    name: String,
    passwords: Passwords,
    include_user: bool,
}

impl SessionCookie {
    /// A cookie named `name` (normally `wos-session`) sealed with `passwords`.
    pub fn new(name: impl Into<String>, passwords: Passwords) -> Self {
        Self {
            name: name.into(),
            passwords,
            include_user: true,
        }
    }

    /// Whether [`SessionCookie::seal`] writes the `user` object (default `true`, as
    /// authkit-nextjs). Leaving it out keeps the cookie well under 4 KB; the user is then
    /// fetched by id (the token's `sub`) when needed.
    ///
    /// A Next.js app sharing the cookie needs the user: authkit-nextjs reads
    /// `session.user.id` and treats a cookie without one as signed out. Keep the default
    /// when the cookie is shared. (A cookie that would exceed 4096 bytes with the user is
    /// written without it either way, with a warning: browsers would drop it whole.)
    pub fn include_user(mut self, include: bool) -> Self {
        self.include_user = include;
        self
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The passwords used.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// Seals `session` with no expiration in the seal (lifetime comes from the cookie's
    /// Max-Age and the tokens), as authkit-nextjs does.
    ///
    /// Browsers silently drop cookies over 4096 bytes, which would loop a sign-in or lose
    /// a rotated refresh token, so a seal that would not fit is redone without the `user`
    /// object (the access token carries everything authorization needs), and if even that
    /// is too large, sealing fails with [`SealError::TooLong`] instead of writing a cookie
    /// that cannot work.
    pub fn seal(&self, session: &Session, now: SystemTime) -> Result<Sealed, SealError> {
        let slim = || Session {
            user: None,
            ..session.clone()
        };
        let mut sealed = if self.include_user || session.user.is_none() {
            seal::seal_json(session, &self.passwords, None, now)?
        } else {
            seal::seal_json(&slim(), &self.passwords, None, now)?
        };
        if self.fits(&sealed) {
            return Ok(sealed);
        }
        if session.user.is_some() && self.include_user {
            tracing::warn!(
                cookie = %self.name,
                bytes = self.name.len() + 1 + sealed.len(),
                "session cookie would exceed {MAX_COOKIE_BYTES} bytes; sealing it without the user object"
            );
            sealed = seal::seal_json(&slim(), &self.passwords, None, now)?;
            if self.fits(&sealed) {
                return Ok(sealed);
            }
        }
        tracing::error!(
            cookie = %self.name,
            bytes = self.name.len() + 1 + sealed.len(),
            "session cookie exceeds {MAX_COOKIE_BYTES} bytes even without the user object"
        );
        Err(SealError::TooLong {
            len: self.name.len() + 1 + sealed.len(),
            max: MAX_COOKIE_BYTES,
        })
    }

    fn fits(&self, sealed: &Sealed) -> bool {
        self.name.len() + 1 + sealed.len() <= MAX_COOKIE_BYTES
    }

    /// Opens a cookie value. Values over 4096 bytes are refused before any parsing.
    pub fn unseal(&self, value: &str, now: SystemTime) -> Result<Session, SessionError> {
        if value.len() > MAX_COOKIE_BYTES {
            return Err(SessionError::TooLarge {
                len: value.len(),
                max: MAX_COOKIE_BYTES,
            });
        }
        Ok(seal::unseal_json(value, &self.passwords, now)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const PW: &str = "this-is-a-test-password-of-32+chars!!";

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn cookie() -> SessionCookie {
        SessionCookie::new(DEFAULT_COOKIE_NAME, Passwords::single(PW).unwrap())
    }

    fn api_user() -> serde_json::Value {
        serde_json::json!({
            "object": "user", "id": "user_01", "email": "a@b.c", "email_verified": true,
            "first_name": "Ada", "last_name": null, "profile_picture_url": null,
            "last_sign_in_at": "2026-01-01T00:00:00.000Z", "locale": null,
            "created_at": "2025-01-01T00:00:00.000Z", "updated_at": "2025-01-02T00:00:00.000Z",
            "external_id": null, "metadata": {"plan": "pro"}
        })
    }

    #[test]
    fn api_user_converts_to_camel_case_cookie_user() {
        let user = User::from_api_json(&api_user()).unwrap();
        let v = serde_json::to_value(&user).unwrap();
        assert_eq!(v["emailVerified"], true);
        assert_eq!(v["firstName"], "Ada");
        assert_eq!(v["lastName"], serde_json::Value::Null);
        assert_eq!(v["profilePictureUrl"], serde_json::Value::Null);
        assert_eq!(v["lastSignInAt"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["createdAt"], "2025-01-01T00:00:00.000Z");
        assert_eq!(v["externalId"], serde_json::Value::Null);
        assert_eq!(v["metadata"]["plan"], "pro");
        assert!(v.get("email_verified").is_none());
    }

    #[test]
    fn session_serialises_with_authkit_nextjs_keys() {
        let mut s = Session::new("at", "rt");
        s.user = Some(User::from_api_json(&api_user()).unwrap());
        s.impersonator = Some(Impersonator {
            email: "admin@x.y".into(),
            reason: Some("support".into()),
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["accessToken"], "at");
        assert_eq!(v["refreshToken"], "rt");
        assert_eq!(v["user"]["id"], "user_01");
        assert_eq!(v["impersonator"]["email"], "admin@x.y");
        assert!(v.get("organizationId").is_none());
        assert!(v.get("authenticationMethod").is_none());
    }

    #[test]
    fn reading_ignores_unknown_keys_and_tolerates_sparse_users() {
        let json = r#"{"accessToken":"a","refreshToken":"r","user":{"object":"user","id":"user_01"},
            "oauthTokens":{"x":1},"organizationId":"org_1","authenticationMethod":"Password"}"#;
        let s: Session = serde_json::from_str(json).unwrap();
        assert_eq!(s.user.as_ref().unwrap().id, "user_01");
        assert_eq!(s.organization_id.as_deref(), Some("org_1"));
        assert_eq!(s.authentication_method.as_deref(), Some("Password"));
        assert!(s.impersonator.is_none());
    }

    #[test]
    fn unknown_user_keys_are_ignored() {
        let json = r#"{"object":"user","id":"u","futureField":{"k":1}}"#;
        let u: User = serde_json::from_str(json).unwrap();
        assert_eq!(u.id, "u");
        assert_eq!(u.email, "");
    }

    #[test]
    fn cookie_round_trips_and_can_omit_the_user() {
        let mut s = Session::new("at", "rt");
        s.user = Some(User::from_api_json(&api_user()).unwrap());
        let c = cookie();
        let sealed = c.seal(&s, now()).unwrap();
        assert_eq!(c.unseal(sealed.as_str(), now()).unwrap(), s);

        let slim = cookie().include_user(false);
        let sealed_slim = slim.seal(&s, now()).unwrap();
        assert!(sealed_slim.len() < sealed.len());
        let back = slim.unseal(sealed_slim.as_str(), now()).unwrap();
        assert!(back.user.is_none());
        assert_eq!(back.access_token, "at");
    }

    #[test]
    fn null_user_fields_read_as_absent_instead_of_refusing_the_cookie() {
        let json = serde_json::json!({
            "accessToken": "at", "refreshToken": "rt",
            "user": {
                "object": null, "id": "user_1", "email": null, "emailVerified": null,
                "firstName": null, "createdAt": null, "updatedAt": null, "metadata": null,
            },
        });
        let session: Session = serde_json::from_value(json).unwrap();
        let user = session.user.unwrap();
        assert_eq!(user.id, "user_1");
        assert_eq!(user.object, "user");
        assert_eq!(user.email, "");
        assert!(!user.email_verified);
        assert!(user.metadata.is_empty());
        // `id` is what ties the user to the token: it stays required.
        let no_id = serde_json::json!({
            "accessToken": "at", "refreshToken": "rt", "user": {"id": null},
        });
        assert!(serde_json::from_value::<Session>(no_id).is_err());
    }

    #[test]
    fn appendix_a1_cookie_opens_as_a_session() {
        let v = "Fe26.2*1*7a73b62558a726fe392a364e6225b3ecf60075c36a5f4c338c5d346b061e354e*-1wcbLgYMNBvFTJ196uiyA*5-wvK1lwViZkSclmDAwwiX_2-Gpu8CEAxTRuVYsUA8n6z9KtWtba31EMAUTBDOnTe3h_oxFuM8zpXAKWz3iNFcN50JkQfQ6HwAFV-rLWGC0rSU2oLs9UdlahsJELgCd3PZ4qiyDVXEpTj5fHD1vBp2k8zbHLPcYi0AcsDwvw7owypMMSPQRWYgnAFEpUfrmLH2PN1Dct9-16FmmhCHdA1g**8cd7182b09de9e551ac49fd93dd4d22b271e711947a85b14c9dc797438fff73a*JWooA_bnSblYgf_bvCQbPs_ynTSvn8nnVC41S9Fl8dg~2";
        let s = cookie().unseal(v, now()).unwrap();
        assert_eq!(s.access_token, "eyJ.test");
        let user = s.user.unwrap();
        assert_eq!(user.email, "a@b.c");
        assert!(user.email_verified);
        assert_eq!(user.first_name, None);
    }

    #[test]
    fn oversized_cookie_is_refused_before_crypto() {
        let big = "A".repeat(MAX_COOKIE_BYTES + 1);
        assert!(matches!(
            cookie().unseal(&big, now()),
            Err(SessionError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_seal_of_something_else_is_not_a_session() {
        let p = Passwords::single(PW).unwrap();
        let other = seal::seal_json(&serde_json::json!({"nonce": "x"}), &p, None, now()).unwrap();
        assert!(matches!(
            cookie().unseal(other.as_str(), now()),
            Err(SessionError::Seal(SealError::Json(_)))
        ));
    }

    #[test]
    fn debug_never_prints_tokens() {
        let s = Session::new("secret-access-token", "secret-refresh-token");
        let d = format!("{s:?} {:?}", cookie());
        assert!(!d.contains("secret-access-token"));
        assert!(!d.contains("secret-refresh-token"));
        assert!(!d.contains(PW));
    }

    #[test]
    fn a_session_too_large_for_a_cookie_is_refused_not_written() {
        let mut s = Session::new("a".repeat(5000), "rt");
        s.user = None;
        assert!(matches!(
            cookie().seal(&s, now()),
            Err(SealError::TooLong { .. })
        ));
    }

    #[test]
    fn an_oversized_user_object_is_dropped_to_fit_the_cookie() {
        let mut s = Session::new("a".repeat(1000), "rt");
        let mut user = User {
            id: "user_1".into(),
            ..User::default()
        };
        user.first_name = Some("x".repeat(3000));
        s.user = Some(user);
        let logs = Captured::default();
        let sealed = logs.during(|| cookie().seal(&s, now()).unwrap());
        assert!(sealed.len() <= MAX_COOKIE_BYTES);
        let back = cookie().unseal(sealed.as_str(), now()).unwrap();
        assert!(back.user.is_none());
        assert_eq!(back.access_token, s.access_token);
        let logs = logs.text();
        assert!(logs.contains("WARN"), "{logs}");
        assert!(logs.contains("would exceed 4096 bytes"), "{logs}");
        // A cookie that fits is sealed without a word.
        let quiet = Captured::default();
        quiet.during(|| cookie().seal(&Session::new("at", "rt"), now()).unwrap());
        assert_eq!(quiet.text(), "");
    }

    /// What `tracing` printed while a closure ran.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn during<T>(&self, f: impl FnOnce() -> T) -> T {
            let writer = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::with_default(subscriber, f)
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }
}
