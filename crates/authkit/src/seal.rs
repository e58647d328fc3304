//! iron `Fe26.2` seals, byte-compatible with iron-session 8 / iron-webcrypto 1.2 and 2.0.
//!
//! authkit-nextjs, `@workos-inc/node` and `@workos/authkit-session` all keep the session
//! cookie and the OAuth `state` as iron seals. Reading and writing the same bytes is what lets
//! a Next.js app and a Rust service share one `wos-session` cookie.
//!
//! # Format (wire spec §5.4)
//!
//! ```text
//! Fe26.2*<password id>*<enc salt>*<iv>*<ciphertext>*<expiration ms>*<mac salt>*<mac>~2
//! ```
//!
//! * both keys: PBKDF2-HMAC-SHA1, 1 iteration, 32 bytes; the salt is the 64-char lowercase hex
//!   string itself (its UTF-8 bytes), not the bytes it encodes;
//! * encryption: AES-256-CBC with PKCS#7 padding over the JSON text, random 16-byte IV;
//! * integrity: HMAC-SHA256 over the first six fields joined with `*`;
//! * binary fields: base64url without padding; expiration: empty (never) or decimal ms;
//! * `~2` is iron-session's cookie-format version, appended after the iron seal.
//!
//! Unsealing follows iron's order: component count, prefix, expiration (60 s skew), password
//! lookup by id, MAC (constant time, **before any decryption**), decrypt, JSON. Input longer
//! than [`MAX_SEAL_LEN`] is refused before any parsing.
//!
//! # Why hand-written
//!
//! The one crate on crates.io that targets this format, `hapi-iron-oxide` 0.1.0, has had a
//! single release, does not handle iron-session's `~2` suffix or password maps/rotation, and
//! has no typed iron errors; the rest of this crate already depends on aws-lc-rs. The whole
//! format is ~150 lines over aws-lc-rs primitives, checked byte-for-byte against the wire
//! spec's Appendix A vector and against the real npm iron-session in
//! `tests/iron_interop.rs`.
//!
//! # Password strength
//!
//! One PBKDF2 iteration means a captured cookie can be attacked offline at roughly the speed
//! of a MAC check (~400k guesses/s/core). Passwords must be at least 32 characters (enforced)
//! and should be random (for example 32 bytes from a CSPRNG, base64-encoded), never a phrase.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::generations::Generations;

/// The iron MAC prefix (`Fe26` + MAC format version 2).
pub const MAC_PREFIX: &str = "Fe26.2";
/// Minimum password length in characters (UTF-16 code units, as iron counts them).
pub const MIN_PASSWORD_LEN: usize = 32;
/// Longest input [`unseal_bytes`] and friends will look at. Browsers keep cookies of at most
/// 4096 bytes, so anything much longer is hostile or broken.
pub const MAX_SEAL_LEN: usize = 16 * 1024;
/// Clock skew allowed when checking a seal's expiration (iron's `timestampSkewSec`).
pub const TIMESTAMP_SKEW: Duration = Duration::from_secs(60);
/// iron-session's cookie-format major version, appended as `~2`.
pub const COOKIE_FORMAT_VERSION: &str = "2";

const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const SALT_BYTES: usize = 32;
const MAX_PASSWORD_ID_LEN: usize = 64;
const EXPIRATION_MAX_DIGITS: usize = 16;

/// Why a seal could not be opened (or made). Mirrors iron's error messages, so logs read the
/// same as a Node service's. Callers treating a cookie should map every variant to
/// "signed out", never to a server error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Input longer than [`MAX_SEAL_LEN`]; rejected before any parsing.
    #[error("seal is {len} bytes, over the {max}-byte limit")]
    TooLong {
        /// Input length in bytes.
        len: usize,
        /// The limit that was exceeded.
        max: usize,
    },
    /// Not exactly eight `*`-separated fields.
    #[error("incorrect number of sealed components: {0} (expected 8)")]
    ComponentCount(usize),
    /// The first field is not `Fe26.2`.
    #[error("wrong mac prefix")]
    WrongPrefix,
    /// A field has a shape iron never produces (expiration with non-digits, a bad IV, a
    /// `~` suffix that is not a number, ...).
    #[error("malformed seal: {0}")]
    Malformed(&'static str),
    /// The expiration (plus 60 s skew) has passed.
    #[error("expired seal")]
    Expired,
    /// The seal names a password id the [`Passwords`] set does not hold.
    #[error("cannot find password: {0}")]
    UnknownPasswordId(String),
    /// The MAC does not match: tampered, truncated, or sealed with another password.
    #[error("bad hmac value")]
    BadMac,
    /// The MAC matched but AES-CBC decryption or unpadding failed (only possible if whoever
    /// holds the password produced a broken seal), or encryption failed while sealing.
    #[error("decryption failed")]
    Decrypt,
    /// The plaintext is not the JSON expected (or a value could not be serialised).
    #[error("sealed payload is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The system random number generator failed while sealing.
    #[error("random number generator failed")]
    Random,
}

/// Why a password or password set was refused at construction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_LEN`] characters.
    #[error("password {id:?} is {len} characters; at least {MIN_PASSWORD_LEN} are required")]
    TooShort {
        /// The id the password was given under.
        id: String,
        /// Its length in characters.
        len: usize,
    },
    /// Password ids must match `^\w+$` (ASCII letters, digits, `_`), at most 64 characters.
    #[error("password id {0:?} must be 1-64 characters of A-Z, a-z, 0-9 or _")]
    InvalidId(String),
    /// The set has no password.
    #[error("no password given")]
    Empty,
    /// The same id appears twice.
    #[error("password id {0:?} given twice")]
    DuplicateId(String),
    /// No numeric id to pick as the sealing password, or the chosen id is not in the set.
    #[error("no current password: {0}")]
    NoCurrent(String),
}

/// One iron password: a secret string of at least 32 characters. Never printed by `Debug`.
#[derive(Clone)]
pub struct Password {
    secret: String,
    /// Shared by clones, so the sealing copy in [`Passwords`] and the lookup entry agree.
    keys: Arc<DerivedKeys>,
}

impl Password {
    /// Checks the length; `id` only labels the error.
    fn new(id: &str, secret: String) -> Result<Self, PasswordError> {
        // iron compares JavaScript string length, which counts UTF-16 code units.
        let len = secret.encode_utf16().count();
        if len < MIN_PASSWORD_LEN {
            return Err(PasswordError::TooShort {
                id: id.to_owned(),
                len,
            });
        }
        Ok(Self {
            secret,
            keys: Arc::default(),
        })
    }

    fn bytes(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    /// The key for `salt`, and whether it was already known (else it was just derived, and
    /// the caller decides whether to [`Password::remember`] it).
    fn key_for(&self, salt: &str) -> ([u8; KEY_LEN], bool) {
        match self.keys.get(salt) {
            Some(key) => (key, true),
            None => (derive_key(self, salt), false),
        }
    }

    fn remember(&self, salt: &str, key: &[u8; KEY_LEN]) {
        self.keys.insert(salt, key);
    }
}

/// Keys already derived from one password, by salt: a cookie presented again skips both
/// PBKDF2 runs (0.85 µs of the ~5.5 µs it takes to open a session cookie).
///
/// Only the salts of seals whose MAC verified are remembered, and those of seals made here
/// (the browser sends them straight back), so forged cookies cannot fill it. A derived key
/// is exactly as secret as the password it sits next to. PBKDF2 does not depend on which of
/// the two keys a salt is for, so one map serves both. Bounded by two generations, like the
/// verified-token cache; the standard library's keyed SipHash keeps salt floods from
/// colliding.
struct DerivedKeys {
    generations: Mutex<KeysBySalt>,
}

type KeysBySalt = Generations<Box<str>, [u8; KEY_LEN], RandomState>;

impl Default for DerivedKeys {
    fn default() -> Self {
        Self {
            generations: Mutex::new(KeysBySalt::new(DERIVED_KEYS_PER_GENERATION)),
        }
    }
}

/// Salts per generation: with two generations, up to 4,096 recent cookies per password
/// (about 0.5 MB at most).
const DERIVED_KEYS_PER_GENERATION: usize = 2048;

impl DerivedKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeysBySalt> {
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, salt: &str) -> Option<[u8; KEY_LEN]> {
        self.lock().get_with(salt, |key| *key)
    }

    fn insert(&self, salt: &str, key: &[u8; KEY_LEN]) {
        self.lock().insert(salt.into(), *key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

fn valid_password_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PASSWORD_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A set of iron passwords keyed by id, one of them current (used to seal).
///
/// This is iron-session's password map: a single `WORKOS_COOKIE_PASSWORD` becomes `{1: pw}`;
/// to rotate, add the new password under a higher id (`{2: new, 1: old}`): new seals use id
/// `2`, cookies sealed under `1` still open until they are re-sealed. A seal with an empty
/// password id (plain `@hapi/iron` with a bare string) is looked up under `default`.
///
/// ```
/// use authkit::seal::Passwords;
/// let pw = Passwords::from_pairs([
///     ("1", "an-old-password-of-at-least-32-chars!!"),
///     ("2", "a-new-password-of-at-least-32-chars!!!"),
/// ])?;
/// assert_eq!(pw.current_id(), "2");
/// # Ok::<(), authkit::seal::PasswordError>(())
/// ```
#[derive(Clone)]
pub struct Passwords {
    entries: BTreeMap<String, Password>,
    current: String,
    // A copy of `entries[current]`, so sealing needs no lookup that could fail.
    current_password: Password,
}

impl Passwords {
    /// One password under id `1`, exactly as iron-session and authkit-nextjs treat a string
    /// password.
    pub fn single(password: impl Into<String>) -> Result<Self, PasswordError> {
        Self::from_pairs([("1", password.into())])
    }

    /// Several passwords; the one with the highest numeric id seals (iron-session's rule).
    /// Fails if no id is numeric: then use [`Passwords::with_current`].
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, PasswordError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut entries = BTreeMap::new();
        for (id, secret) in pairs {
            let id = id.into();
            if !valid_password_id(&id) {
                return Err(PasswordError::InvalidId(id));
            }
            let password = Password::new(&id, secret.into())?;
            if entries.insert(id.clone(), password).is_some() {
                return Err(PasswordError::DuplicateId(id));
            }
        }
        if entries.is_empty() {
            return Err(PasswordError::Empty);
        }
        let numeric = entries
            .iter()
            .filter_map(|(id, pw)| id.parse::<u64>().ok().map(|n| (n, id, pw)))
            .max_by_key(|(n, _, _)| *n)
            .map(|(_, id, pw)| (id.clone(), pw.clone()));
        // No numeric id: a set of exactly one password is still unambiguous.
        let only = || match (entries.len(), entries.iter().next()) {
            (1, Some((id, pw))) => Some((id.clone(), pw.clone())),
            _ => None,
        };
        match numeric.or_else(only) {
            Some((current, current_password)) => Ok(Self {
                entries,
                current,
                current_password,
            }),
            None => Err(PasswordError::NoCurrent(
                "no numeric password id; name one with with_current".into(),
            )),
        }
    }

    /// Seal with `id` instead of the highest numeric id.
    pub fn with_current(mut self, id: &str) -> Result<Self, PasswordError> {
        let Some(password) = self.entries.get(id) else {
            return Err(PasswordError::NoCurrent(format!(
                "{id:?} is not in the set"
            )));
        };
        self.current_password = password.clone();
        self.current = id.to_owned();
        Ok(self)
    }

    /// The id new seals carry.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// All ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn current(&self) -> (&str, &Password) {
        (&self.current, &self.current_password)
    }

    fn lookup(&self, id: &str) -> Option<&Password> {
        let id = if id.is_empty() { "default" } else { id };
        self.entries.get(id)
    }
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("ids", &self.entries.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// A seal string as it goes into a cookie or an OAuth `state`: the iron seal plus
/// iron-session's `~2` suffix. Only the seal functions make one.
///
/// It is a bearer credential (whoever holds a session seal holds the session), so `Debug`
/// shows only its length; use [`Sealed::as_str`] to write it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(String);

impl Sealed {
    /// The full value, `Fe26.2*…~2`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full value, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The iron seal without the `~2` suffix (what `@hapi/iron` / iron-webcrypto read).
    pub fn iron_seal(&self) -> &str {
        split_format_suffix(&self.0).0
    }

    /// Length in bytes of the full value.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for a real seal; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed(<{} bytes>)", self.0.len())
    }
}

impl AsRef<str> for Sealed {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The random inputs of one seal. Tests fix them to reproduce known vectors.
pub(crate) struct SealRandom {
    pub(crate) enc_salt: String,
    pub(crate) iv: [u8; IV_LEN],
    pub(crate) mac_salt: String,
}

impl SealRandom {
    fn generate() -> Result<Self, SealError> {
        let mut buf = [0u8; SALT_BYTES * 2 + IV_LEN];
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| SealError::Random)?;
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&buf[SALT_BYTES * 2..]);
        Ok(Self {
            enc_salt: hex::encode(&buf[..SALT_BYTES]),
            mac_salt: hex::encode(&buf[SALT_BYTES..SALT_BYTES * 2]),
            iv,
        })
    }
}

fn derive_key(password: &Password, salt: &str) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    // Cannot fail: 32 bytes is far below PBKDF2-HMAC-SHA1's output limit.
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA1,
        NonZeroU32::MIN,
        salt.as_bytes(),
        password.bytes(),
        &mut key,
    );
    key
}

fn mac_b64(mac_key: &[u8; KEY_LEN], mac_base: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, mac_key);
    URL_SAFE_NO_PAD.encode(hmac::sign(&key, mac_base.as_bytes()))
}

fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Seals raw plaintext bytes. iron readers `JSON.parse` the plaintext, so it must be JSON
/// text; prefer [`seal_json`].
///
/// `ttl` `None` leaves the expiration field empty (the seal never expires by itself, as
/// authkit-nextjs seals its session cookie); `Some(d)` sets it to `now + d` in milliseconds.
pub fn seal_bytes(
    plaintext: &[u8],
    passwords: &Passwords,
    ttl: Option<Duration>,
    now: SystemTime,
) -> Result<Sealed, SealError> {
    seal_with(plaintext, passwords, ttl, now, SealRandom::generate()?)
}

/// Serialises `value` with serde_json (same bytes as `JSON.stringify` for the same field
/// order) and seals it. See [`seal_bytes`] for `ttl`.
pub fn seal_json<T: Serialize + ?Sized>(
    value: &T,
    passwords: &Passwords,
    ttl: Option<Duration>,
    now: SystemTime,
) -> Result<Sealed, SealError> {
    let json = serde_json::to_vec(value).map_err(SealError::Json)?;
    seal_bytes(&json, passwords, ttl, now)
}

pub(crate) fn seal_with(
    plaintext: &[u8],
    passwords: &Passwords,
    ttl: Option<Duration>,
    now: SystemTime,
    random: SealRandom,
) -> Result<Sealed, SealError> {
    let (id, password) = passwords.current();

    let enc_key = derive_key(password, &random.enc_salt);
    // The browser sends this seal back on its next request.
    password.remember(&random.enc_salt, &enc_key);
    let key = UnboundCipherKey::new(&AES_256, &enc_key).map_err(|_| SealError::Decrypt)?;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| SealError::Decrypt)?;
    let mut buf = plaintext.to_vec();
    key.less_safe_encrypt(
        &mut buf,
        EncryptionContext::Iv128(FixedLength::from(random.iv)),
    )
    .map_err(|_| SealError::Decrypt)?;

    let expiration = match ttl {
        Some(ttl) if !ttl.is_zero() => {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            millis_since_epoch(now).saturating_add(ttl_ms).to_string()
        }
        _ => String::new(),
    };
    let mac_base = format!(
        "{MAC_PREFIX}*{id}*{}*{}*{}*{expiration}",
        random.enc_salt,
        URL_SAFE_NO_PAD.encode(random.iv),
        URL_SAFE_NO_PAD.encode(&buf),
    );
    let mac_key = derive_key(password, &random.mac_salt);
    password.remember(&random.mac_salt, &mac_key);
    let mac = mac_b64(&mac_key, &mac_base);
    Ok(Sealed(format!(
        "{mac_base}*{}*{mac}~{COOKIE_FORMAT_VERSION}",
        random.mac_salt
    )))
}

/// Splits iron-session's `~<version>` suffix off. Base64url never contains `~`, so the first
/// one ends the iron seal.
fn split_format_suffix(value: &str) -> (&str, Option<&str>) {
    // memchr: `str::split_once` walks the 2-4 KB cookie a character at a time.
    match memchr::memchr(b'~', value.as_bytes()) {
        // '~' is ASCII, so both sides are on char boundaries.
        Some(at) => (&value[..at], Some(&value[at + 1..])),
        None => (value, None),
    }
}

/// The eight `*`-separated components of a seal, or `None` if there are not exactly eight.
fn split_components(seal: &str) -> Option<[&str; 8]> {
    let mut parts = [""; 8];
    let mut start = 0;
    let mut stars = memchr::memchr_iter(b'*', seal.as_bytes());
    for part in parts.iter_mut().take(7) {
        let end = stars.next()?;
        // '*' is ASCII, so every cut is on a char boundary.
        *part = &seal[start..end];
        start = end + 1;
    }
    if stars.next().is_some() {
        return None;
    }
    parts[7] = &seal[start..];
    Some(parts)
}

/// Opens a bare iron seal (no `~2` suffix) and returns the plaintext bytes.
///
/// Checks run in iron's order and stop at the first failure; the MAC is verified in
/// constant time before anything is decrypted.
pub fn unseal_bytes(
    seal: &str,
    passwords: &Passwords,
    now: SystemTime,
) -> Result<Vec<u8>, SealError> {
    if seal.len() > MAX_SEAL_LEN {
        return Err(SealError::TooLong {
            len: seal.len(),
            max: MAX_SEAL_LEN,
        });
    }
    let Some(
        [
            prefix,
            id,
            enc_salt,
            iv_b64,
            ct_b64,
            expiration,
            mac_salt,
            mac,
        ],
    ) = split_components(seal)
    else {
        return Err(SealError::ComponentCount(
            memchr::memchr_iter(b'*', seal.as_bytes()).count() + 1,
        ));
    };
    if prefix != MAC_PREFIX {
        return Err(SealError::WrongPrefix);
    }
    if !expiration.is_empty() {
        // iron-webcrypto 2 forbids a leading zero; iron never writes one.
        if expiration.len() > EXPIRATION_MAX_DIGITS
            || !expiration.bytes().all(|b| b.is_ascii_digit())
            || expiration.starts_with('0')
        {
            return Err(SealError::Malformed(
                "expiration is not a millisecond timestamp",
            ));
        }
        let exp: u64 = expiration
            .parse()
            .map_err(|_| SealError::Malformed("expiration is not a millisecond timestamp"))?;
        let skew_ms = TIMESTAMP_SKEW.as_millis() as u64;
        if exp <= millis_since_epoch(now).saturating_sub(skew_ms) {
            return Err(SealError::Expired);
        }
    }
    if !id.is_empty() && !valid_password_id(id) {
        return Err(SealError::Malformed("password id"));
    }
    let password = passwords
        .lookup(id)
        .ok_or_else(|| SealError::UnknownPasswordId(id.to_owned()))?;

    let mac_base_len = seal.len() - mac.len() - mac_salt.len() - 2;
    let mac_base = &seal[..mac_base_len];
    let (mac_key, known) = password.key_for(mac_salt);
    let expected = mac_b64(&mac_key, mac_base);
    if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
        return Err(SealError::BadMac);
    }
    if !known {
        password.remember(mac_salt, &mac_key);
    }

    // Authenticated from here on.
    // base64-simd (strict like the `base64` engine: no padding, canonical trailing bits):
    // the ciphertext is most of a 2-4 KB cookie, and the vectorised decoder reads it in a
    // fraction of the time.
    let b64 = base64_simd::URL_SAFE_NO_PAD;
    let mut iv = [0u8; IV_LEN];
    // `decode` panics on a short output buffer, so the length is checked first.
    if b64.decoded_length(iv_b64.as_bytes()).ok() != Some(IV_LEN)
        || b64
            .decode(iv_b64.as_bytes(), base64_simd::Out::from_slice(&mut iv[..]))
            .is_err()
    {
        return Err(SealError::Malformed("iv"));
    }
    let mut ct = b64
        .decode_to_vec(ct_b64)
        .map_err(|_| SealError::Malformed("ciphertext"))?;
    // The MAC covers `enc_salt`: it is the sealer's, so its key may be remembered.
    let (enc_key, known) = password.key_for(enc_salt);
    if !known {
        password.remember(enc_salt, &enc_key);
    }
    let key = UnboundCipherKey::new(&AES_256, &enc_key).map_err(|_| SealError::Decrypt)?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| SealError::Decrypt)?;
    let plain_len = key
        .decrypt(&mut ct, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| SealError::Decrypt)?
        .len();
    ct.truncate(plain_len);
    Ok(ct)
}

/// Splits the `~` suffix, opens the seal, and tells whether the payload uses iron-session
/// v6's `{persistent: …}` layout.
fn open_cookie(
    cookie: &str,
    passwords: &Passwords,
    now: SystemTime,
) -> Result<(Vec<u8>, bool), SealError> {
    if cookie.len() > MAX_SEAL_LEN {
        return Err(SealError::TooLong {
            len: cookie.len(),
            max: MAX_SEAL_LEN,
        });
    }
    let (seal, suffix) = split_format_suffix(cookie);
    let legacy = match suffix {
        None => false,
        Some(s) if s == COOKIE_FORMAT_VERSION => false,
        Some(s) if !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()) => true,
        Some(_) => return Err(SealError::Malformed("cookie format suffix")),
    };
    Ok((unseal_bytes(seal, passwords, now)?, legacy))
}

fn persistent(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(mut map) => match map.remove("persistent") {
            Some(p @ serde_json::Value::Object(_)) => p,
            _ => serde_json::Value::Object(Default::default()),
        },
        _ => serde_json::Value::Object(Default::default()),
    }
}

/// Opens a cookie value the way iron-session 8 `unsealData` does and returns the JSON.
///
/// * `<seal>~2`: the payload as sealed (what iron-session 8, authkit-nextjs and this crate
///   write);
/// * `<seal>~<other number>`: iron-session v6's layout, the payload's `persistent` object
///   (`{}` if absent);
/// * `<seal>` with no suffix: the payload as sealed. Here we follow `@workos-inc/node`;
///   iron-session 8.0.4 would read `persistent` instead, but no current writer produces a
///   bare seal for a cookie, and plain iron tickets carry none.
pub fn unseal_value(
    cookie: &str,
    passwords: &Passwords,
    now: SystemTime,
) -> Result<serde_json::Value, SealError> {
    let (plain, legacy) = open_cookie(cookie, passwords, now)?;
    let value: serde_json::Value = serde_json::from_slice(&plain).map_err(SealError::Json)?;
    Ok(if legacy { persistent(value) } else { value })
}

/// Opens a cookie value (see [`unseal_value`] for the `~` suffix) into `T`, parsing the
/// plaintext straight into `T` (no intermediate `Value`) for current-format cookies.
pub fn unseal_json<T: DeserializeOwned>(
    cookie: &str,
    passwords: &Passwords,
    now: SystemTime,
) -> Result<T, SealError> {
    let (plain, legacy) = open_cookie(cookie, passwords, now)?;
    if legacy {
        let value: serde_json::Value = serde_json::from_slice(&plain).map_err(SealError::Json)?;
        serde_json::from_value(persistent(value)).map_err(SealError::Json)
    } else {
        // One UTF-8 check of the whole plaintext, then a parser that trusts it (serde_json's
        // slice reader re-validates every string it meets).
        let text = std::str::from_utf8(&plain).map_err(|_| {
            SealError::Json(<serde_json::Error as serde::de::Error>::custom(
                "plaintext is not UTF-8",
            ))
        })?;
        serde_json::from_str(text).map_err(SealError::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "this-is-a-test-password-of-32+chars!!";
    const A1_PLAIN: &str = r#"{"accessToken":"eyJ.test","refreshToken":"rt_123","user":{"object":"user","id":"user_01"}}"#;
    const A1_SEAL: &str = "Fe26.2*1*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa*AAECAwQFBgcICQoLDA0ODw*TYpVyu3VWr3FlVTTAfn6OFkXOPUjfkddLlJNkJdTA27NIfeYbJ4wnOQcVRyiYBKqux3VmdOob5hyjfUDDTMyfoJ8mii5HTva_uXmvlbn4uyqcUiFqjMP8YQamTtnmaLA**bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb*vofFkWiKeMk68L3ZN8tLRHKdeMAYhxxAlmTbCZ6dYm0~2";
    const A1_SECOND: &str = "Fe26.2*1*7a73b62558a726fe392a364e6225b3ecf60075c36a5f4c338c5d346b061e354e*-1wcbLgYMNBvFTJ196uiyA*5-wvK1lwViZkSclmDAwwiX_2-Gpu8CEAxTRuVYsUA8n6z9KtWtba31EMAUTBDOnTe3h_oxFuM8zpXAKWz3iNFcN50JkQfQ6HwAFV-rLWGC0rSU2oLs9UdlahsJELgCd3PZ4qiyDVXEpTj5fHD1vBp2k8zbHLPcYi0AcsDwvw7owypMMSPQRWYgnAFEpUfrmLH2PN1Dct9-16FmmhCHdA1g**8cd7182b09de9e551ac49fd93dd4d22b271e711947a85b14c9dc797438fff73a*JWooA_bnSblYgf_bvCQbPs_ynTSvn8nnVC41S9Fl8dg~2";
    const A1_SECOND_PLAIN: &str = r#"{"accessToken":"eyJ.test","refreshToken":"rt_123","user":{"object":"user","id":"user_01","email":"a@b.c","emailVerified":true,"firstName":null}}"#;

    fn pw() -> Passwords {
        Passwords::single(PW).unwrap()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn fixed_random() -> SealRandom {
        let mut iv = [0u8; 16];
        for (i, b) in iv.iter_mut().enumerate() {
            *b = i as u8;
        }
        SealRandom {
            enc_salt: "a".repeat(64),
            iv,
            mac_salt: "b".repeat(64),
        }
    }

    #[test]
    fn appendix_a1_vector_is_reproduced_byte_for_byte() {
        let sealed = seal_with(A1_PLAIN.as_bytes(), &pw(), None, now(), fixed_random()).unwrap();
        assert_eq!(sealed.as_str(), A1_SEAL);
    }

    #[test]
    fn appendix_a1_vector_unseals_to_its_plaintext() {
        let plain = unseal_bytes(Sealed(A1_SEAL.into()).iron_seal(), &pw(), now()).unwrap();
        assert_eq!(plain, A1_PLAIN.as_bytes());
    }

    #[test]
    fn appendix_a1_random_iron_session_seal_unseals() {
        let v = unseal_value(A1_SECOND, &pw(), SystemTime::now()).unwrap();
        let expected: serde_json::Value = serde_json::from_str(A1_SECOND_PLAIN).unwrap();
        assert_eq!(v, expected);
        let (seal, _) = split_format_suffix(A1_SECOND);
        assert_eq!(
            unseal_bytes(seal, &pw(), now()).unwrap(),
            A1_SECOND_PLAIN.as_bytes()
        );
    }

    #[test]
    fn hapi_iron_published_vector_with_empty_id_unseals_under_default() {
        // hapijs/iron test/index.js, describe('unseal()'): sealed with a bare string password,
        // so the id field is empty and a password map is consulted under "default".
        let ticket = "Fe26.2**0cdd607945dd1dffb7da0b0bf5f1a7daa6218cbae14cac51dcbd91fb077aeb5b*aOZLCKLhCt0D5IU1qLTtYw*g0ilNDlQ3TsdFUqJCqAm9iL7Wa60H7eYcHL_5oP136TOJREkS3BzheDC1dlxz5oJ**05b8943049af490e913bbc3a2485bee2aaf7b823f4c41d0ff0b7c168371a3772*R8yscVdTBRMdsoVbdDiFmUL8zb-c3PQLGJn4Y8C-AqI";
        let pw = Passwords::from_pairs([(
            "default",
            "some_not_random_password_that_is_also_long_enough",
        )])
        .unwrap();
        let v = unseal_value(ticket, &pw, now()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":1,"b":2,"c":[3,4,5],"d":{"e":"f"}})
        );
        // The same file's wrong-prefix ticket.
        let fe27 = "Fe27.2**a6dc6339e5ea5dfe7a135631cf3b7dcf47ea38246369d45767c928ea81781694*D3DLEoi-Hn3c972TPpZXqw*mCBhmhHhRKk9KtBjwu3h-1lx1MHKkgloQPKRkQZxpnDwYnFkb3RqdVTQRcuhGf4M**ff2bf988aa0edf2b34c02d220a45c4a3c572dac6b995771ed20de58da919bfa5*HfWzyJlz_UP9odmXvUaVK1TtdDuOCaezr-TAg2GjBCU";
        assert!(matches!(
            unseal_value(fe27, &pw, now()),
            Err(SealError::WrongPrefix)
        ));
        // ... and its component-count ticket (an extra leading field).
        let nine = format!("x*{}", &fe27.replacen("Fe27.2", "Fe26.2", 1));
        assert!(matches!(
            unseal_value(&nine, &pw, now()),
            Err(SealError::ComponentCount(9))
        ));
    }

    #[test]
    fn round_trip_with_ttl_and_expiry_is_enforced_with_60s_skew() {
        let sealed = seal_json(
            &serde_json::json!({"a": 1}),
            &pw(),
            Some(Duration::from_secs(600)),
            now(),
        )
        .unwrap();
        let exp_field = sealed.iron_seal().split('*').nth(5).unwrap().to_owned();
        assert_eq!(exp_field, (1_700_000_000_000u64 + 600_000).to_string());
        let ok = now() + Duration::from_secs(600 + 59);
        assert!(unseal_value(sealed.as_str(), &pw(), ok).is_ok());
        let late = now() + Duration::from_secs(600 + 60);
        assert!(matches!(
            unseal_value(sealed.as_str(), &pw(), late),
            Err(SealError::Expired)
        ));
    }

    #[test]
    fn round_trips_at_every_padding_boundary() {
        for len in [0usize, 1, 13, 14, 15, 16, 17, 30, 31, 32, 33, 1000, 4000] {
            let value = "x".repeat(len);
            let sealed = seal_json(&value, &pw(), None, now()).unwrap();
            assert_eq!(
                unseal_json::<String>(sealed.as_str(), &pw(), now()).unwrap(),
                value
            );
        }
    }

    #[test]
    fn every_seal_uses_fresh_salts_and_iv() {
        let a = seal_json(&1, &pw(), None, now()).unwrap();
        let b = seal_json(&1, &pw(), None, now()).unwrap();
        let fa: Vec<&str> = a.iron_seal().split('*').collect();
        let fb: Vec<&str> = b.iron_seal().split('*').collect();
        for i in [2, 3, 6] {
            assert_ne!(fa[i], fb[i], "field {i}");
        }
        assert_eq!(fa[2].len(), 64);
        assert!(
            fa[2]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(fa[3].len(), 22);
    }

    #[test]
    fn zero_ttl_leaves_expiration_empty() {
        let sealed = seal_json(&1, &pw(), Some(Duration::ZERO), now()).unwrap();
        assert_eq!(sealed.iron_seal().split('*').nth(5), Some(""));
    }

    #[test]
    fn rotation_seals_with_highest_id_and_opens_old_seals() {
        let old = Passwords::single(PW).unwrap();
        let old_seal = seal_json(&"old", &old, None, now()).unwrap();
        let rotated =
            Passwords::from_pairs([("1", PW), ("2", "a-brand-new-password-of-32+characters")])
                .unwrap();
        assert_eq!(rotated.current_id(), "2");
        let new_seal = seal_json(&"new", &rotated, None, now()).unwrap();
        assert!(new_seal.as_str().starts_with("Fe26.2*2*"));
        assert_eq!(
            unseal_json::<String>(new_seal.as_str(), &rotated, now()).unwrap(),
            "new"
        );
        assert_eq!(
            unseal_json::<String>(old_seal.as_str(), &rotated, now()).unwrap(),
            "old"
        );
        // The old set cannot open the new seal.
        assert!(matches!(
            unseal_value(new_seal.as_str(), &old, now()),
            Err(SealError::UnknownPasswordId(id)) if id == "2"
        ));
    }

    #[test]
    fn designated_current_password_is_used() {
        let p = Passwords::from_pairs([("1", PW), ("2", "a-brand-new-password-of-32+characters")])
            .unwrap()
            .with_current("1")
            .unwrap();
        let s = seal_json(&1, &p, None, now()).unwrap();
        assert!(s.as_str().starts_with("Fe26.2*1*"));
        assert!(p.clone().with_current("9").is_err());
    }

    #[test]
    fn short_password_is_refused_at_construction() {
        let err = Passwords::single("x".repeat(31)).unwrap_err();
        assert_eq!(
            err,
            PasswordError::TooShort {
                id: "1".into(),
                len: 31
            }
        );
        assert!(Passwords::single("x".repeat(32)).is_ok());
    }

    #[test]
    fn invalid_or_duplicate_ids_are_refused() {
        assert!(matches!(
            Passwords::from_pairs([("a-b", PW)]),
            Err(PasswordError::InvalidId(_))
        ));
        assert!(matches!(
            Passwords::from_pairs([("", PW)]),
            Err(PasswordError::InvalidId(_))
        ));
        assert!(matches!(
            Passwords::from_pairs([("1", PW), ("1", PW)]),
            Err(PasswordError::DuplicateId(_))
        ));
        assert!(matches!(
            Passwords::from_pairs(Vec::<(String, String)>::new()),
            Err(PasswordError::Empty)
        ));
        assert!(matches!(
            Passwords::from_pairs([("a", PW), ("b", PW)]),
            Err(PasswordError::NoCurrent(_))
        ));
    }

    #[test]
    fn debug_output_never_contains_passwords_or_seals() {
        let p = pw();
        let s = seal_json(&"secret-payload", &p, None, now()).unwrap();
        let dbg = format!("{p:?} {:?} {s:?}", Password::new("1", PW.into()).unwrap());
        assert!(!dbg.contains(PW), "{dbg}");
        assert!(!dbg.contains("Fe26"), "{dbg}");
    }

    /// Replaces field `i` (0-based) of the A.1 seal.
    fn with_field(i: usize, f: impl Fn(&str) -> String) -> String {
        let (seal, _) = split_format_suffix(A1_SEAL);
        let mut parts: Vec<String> = seal.split('*').map(str::to_owned).collect();
        parts[i] = f(&parts[i]);
        format!("{}~2", parts.join("*"))
    }

    fn flip_char(s: &str) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        let mid = chars.len() / 2;
        chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    }

    #[test]
    fn a_flipped_character_in_any_authenticated_field_is_bad_mac() {
        // 1 = password id is covered separately (unknown id); 5 = expiration below.
        // With nothing remembered, and with the genuine seal's keys remembered.
        let warm = pw();
        unseal_value(A1_SEAL, &warm, now()).unwrap();
        for passwords in [pw(), warm] {
            for field in [2, 3, 4, 6, 7] {
                let tampered = with_field(field, flip_char);
                let err = unseal_value(&tampered, &passwords, now()).unwrap_err();
                assert!(matches!(err, SealError::BadMac), "field {field}: {err:?}");
            }
        }
    }

    #[test]
    fn an_added_expiration_is_bad_mac_and_a_past_one_is_expired() {
        let future = with_field(5, |_| "99999999999999".into());
        assert!(matches!(
            unseal_value(&future, &pw(), now()),
            Err(SealError::BadMac)
        ));
        let past = with_field(5, |_| "1".into());
        assert!(matches!(
            unseal_value(&past, &pw(), now()),
            Err(SealError::Expired)
        ));
        for bad in ["01", "12a", "-5", "99999999999999999999"] {
            let t = with_field(5, |_| bad.into());
            assert!(
                matches!(unseal_value(&t, &pw(), now()), Err(SealError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrong_component_counts_are_rejected() {
        let (seal, _) = split_format_suffix(A1_SEAL);
        let seven = seal.rsplit_once('*').unwrap().0;
        assert!(matches!(
            unseal_bytes(seven, &pw(), now()),
            Err(SealError::ComponentCount(7))
        ));
        let nine = format!("{seal}*x");
        assert!(matches!(
            unseal_bytes(&nine, &pw(), now()),
            Err(SealError::ComponentCount(9))
        ));
        assert!(matches!(
            unseal_bytes("", &pw(), now()),
            Err(SealError::ComponentCount(1))
        ));
    }

    #[test]
    fn wrong_prefix_is_rejected() {
        let t = with_field(0, |_| "Fe27.2".into());
        assert!(matches!(
            unseal_value(&t, &pw(), now()),
            Err(SealError::WrongPrefix)
        ));
    }

    #[test]
    fn unknown_password_id_is_rejected() {
        let t = with_field(1, |_| "2".into());
        assert!(matches!(
            unseal_value(&t, &pw(), now()),
            Err(SealError::UnknownPasswordId(id)) if id == "2"
        ));
        let t = with_field(1, |_| "../x".into());
        assert!(matches!(
            unseal_value(&t, &pw(), now()),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_password_is_bad_mac() {
        let other = Passwords::single("another-password-that-is-32-chars-long").unwrap();
        assert!(matches!(
            unseal_value(A1_SEAL, &other, now()),
            Err(SealError::BadMac)
        ));
    }

    #[test]
    fn oversize_input_is_rejected_before_parsing() {
        let big = "*".repeat(MAX_SEAL_LEN + 1);
        assert!(matches!(
            unseal_value(&big, &pw(), now()),
            Err(SealError::TooLong { .. })
        ));
        assert!(matches!(
            unseal_bytes(&big, &pw(), now()),
            Err(SealError::TooLong { .. })
        ));
    }

    #[test]
    fn cookie_suffixes_are_handled() {
        let (seal, _) = split_format_suffix(A1_SEAL);
        // Bare seal: payload as is.
        assert!(
            unseal_value(seal, &pw(), now())
                .unwrap()
                .get("accessToken")
                .is_some()
        );
        // Legacy v1 suffix: `persistent` (absent here, so empty).
        let v1 = format!("{seal}~1");
        assert_eq!(
            unseal_value(&v1, &pw(), now()).unwrap(),
            serde_json::json!({})
        );
        for bad in ["~", "~x", "~2~2", "~99999"] {
            let t = format!("{seal}{bad}");
            assert!(
                matches!(unseal_value(&t, &pw(), now()), Err(SealError::Malformed(_))),
                "{bad}"
            );
        }
    }

    fn remembered(p: &Passwords) -> usize {
        p.current().1.keys.len()
    }

    #[test]
    fn a_seal_opened_twice_opens_the_second_time_from_remembered_keys() {
        let p = pw();
        let plain = unseal_bytes(Sealed(A1_SEAL.into()).iron_seal(), &p, now()).unwrap();
        assert_eq!(remembered(&p), 2, "the MAC salt and the encryption salt");
        // Same answer from the remembered keys as from a fresh derivation.
        let again = unseal_bytes(Sealed(A1_SEAL.into()).iron_seal(), &p, now()).unwrap();
        assert_eq!(again, plain);
        assert_eq!(plain, A1_PLAIN.as_bytes());
        // A clone of the set (as every `AuthKit` clone holds) shares what was learnt.
        assert_eq!(remembered(&p.clone()), 2);
        // And the remembered key is what the next open uses: spoil it, and the MAC fails.
        let (seal, _) = split_format_suffix(A1_SEAL);
        let mac_salt = seal.split('*').nth(6).unwrap();
        p.current().1.remember(mac_salt, &[0; KEY_LEN]);
        assert!(matches!(
            unseal_bytes(seal, &p, now()),
            Err(SealError::BadMac)
        ));
    }

    #[test]
    fn our_own_seals_are_remembered_and_open_like_any_other() {
        let p = pw();
        let sealed = seal_bytes(A1_PLAIN.as_bytes(), &p, None, now()).unwrap();
        assert_eq!(remembered(&p), 2);
        let fresh = pw();
        for set in [&p, &fresh] {
            let plain = unseal_bytes(sealed.iron_seal(), set, now()).unwrap();
            assert_eq!(plain, A1_PLAIN.as_bytes());
        }
    }

    #[test]
    fn forged_seals_leave_no_derived_key_behind() {
        let p = pw();
        let (seal, _) = split_format_suffix(A1_SEAL);
        for i in 0..100 {
            // A fresh salt each time, and a MAC that cannot match.
            let fields: Vec<&str> = seal.split('*').collect();
            let salt = format!("{i:064x}");
            let forged = format!("{}*{salt}*{}", fields[..6].join("*"), fields[7]);
            assert!(matches!(
                unseal_bytes(&forged, &p, now()),
                Err(SealError::BadMac)
            ));
        }
        assert_eq!(remembered(&p), 0);
    }

    #[test]
    fn remembered_keys_are_bounded() {
        let p = pw();
        let password = p.current().1;
        for i in 0..5 * DERIVED_KEYS_PER_GENERATION {
            password.remember(&format!("{i:064x}"), &[0; KEY_LEN]);
        }
        assert!(remembered(&p) <= 2 * DERIVED_KEYS_PER_GENERATION);
        // The newest salts are kept.
        let newest = format!("{:064x}", 5 * DERIVED_KEYS_PER_GENERATION - 1);
        assert!(password.keys.get(&newest).is_some());
    }

    #[test]
    fn a_correctly_maced_seal_with_garbage_ciphertext_is_decrypt_error() {
        // Build a seal whose MAC is valid but whose ciphertext is not a whole AES block.
        let p = pw();
        let (_, password) = p.current();
        let base = format!(
            "{MAC_PREFIX}*1*{}*{}*{}*",
            "a".repeat(64),
            URL_SAFE_NO_PAD.encode([0u8; 16]),
            URL_SAFE_NO_PAD.encode([1u8; 5]),
        );
        let mac = mac_b64(&derive_key(password, "salt"), &base);
        let t = format!("{base}*salt*{mac}");
        assert!(matches!(
            unseal_bytes(&t, &p, now()),
            Err(SealError::Decrypt)
        ));
        // Valid MAC, undecodable IV.
        let base = format!("{MAC_PREFIX}*1*s*!!*AAAA*");
        let mac = mac_b64(&derive_key(password, "salt"), &base);
        let t = format!("{base}*salt*{mac}");
        assert!(matches!(
            unseal_bytes(&t, &p, now()),
            Err(SealError::Malformed("iv"))
        ));
    }

    #[test]
    fn random_garbage_never_panics() {
        let p = pw();
        let mut seed = 0x1234_5678_u32;
        let alphabet = b"Fe26.*~0123456789abcdefABCDEF-_";
        for len in 0..300 {
            let s: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    alphabet[seed as usize % alphabet.len()] as char
                })
                .collect();
            let _ = unseal_value(&s, &p, now());
            let _ = unseal_value(&format!("Fe26.2*1*{s}"), &p, now());
        }
    }
}
