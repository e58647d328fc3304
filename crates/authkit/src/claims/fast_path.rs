//! A one-pass reader for claims payloads in the shape WorkOS issues them.
//!
//! serde_json, driven by the strict visitor of the parent module, spends 0.54 µs on a
//! ~330-byte WorkOS payload (allocations included): more than half of what an uncached
//! verification costs beyond the RSA operation itself. This reader takes 0.36 µs
//! (`verify_parts/claims` in `bench/`), of which ~0.11 µs are the allocations of the
//! `String` fields. WorkOS payloads use a small part of JSON: one flat object of strings
//! without escapes, unsigned integers, arrays of such strings, and `act: {"sub": "..."}`.
//! [`read`] accepts exactly that part and answers `None` for everything else (an escape,
//! whitespace other than spaces, a float or negative number, a nested value in an unknown
//! claim, a repeated name, a missing required claim, malformed JSON), which the caller then
//! hands to the strict serde path to accept or refuse.
//!
//! So this reader never refuses anything: it is a shortcut, not a second opinion, in the
//! way `workos_header_kid` is one for the JOSE header. Whenever it answers `Some`, the
//! answer is the one the strict path gives for the same bytes; the differential tests
//! below hold it to that on hand-picked and on generated payloads.
//!
//! Why not a crate: serde_json's own speed is the cost being removed, and sonic-rs measured
//! slower than serde_json on payloads this small (0.53 µs), its set-up outweighing the scan.

use serde_json::{Map, Value};

use super::{Actor, Audience, Claims};

/// The claims in `text` when it is a payload of the common shape, else `None`.
pub(super) fn read(text: &str) -> Option<Claims> {
    // No backslash and no control character anywhere: then no string needs unescaping
    // and every `"` ends the string it closes. Checked once over the whole payload in one
    // branch-free (so vectorised) pass rather than string by string, where data-dependent
    // loop exits cost more than the scan. Compact JSON, which WorkOS and JWT libraries
    // produce, has no whitespace that this turns away.
    let bytes = text.as_bytes();
    let special = |b: u8| b == b'\\' || b < 0x20;
    if bytes.iter().fold(false, |any, &b| any | special(b)) {
        return None;
    }
    Reader {
        text,
        bytes,
        pos: 0,
    }
    .claims()
}

/// The index of the first `"` in `bytes`, eight bytes per step in a `u64` (the classic
/// zero-byte bit trick). Claim strings are short: memchr's vector set-up and indirect call
/// cost more than the search itself at these lengths.
#[inline]
fn find_quote(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ QUOTES;
        // The high bit of every zero byte of `x`; one above the lowest zero byte can be
        // spurious (a borrow), the lowest never is.
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(offset + (zeros.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&b| b == b'"').map(|i| offset + i)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// Fills a claim's slot, or fails on a repeat so the strict path (which refuses it) decides.
/// The slot of an optional claim holds `Some(None)` after a `null`, so even a repeat of a
/// `null` is seen.
fn first<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

impl<'a> Reader<'a> {
    /// The next byte after JSON whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// A string with no escape and no control character (which JSON forbids unescaped),
    /// borrowed without its quotes.
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = self.bytes.get(start..)?;
        let len = find_quote(rest)?;
        self.pos = start + len + 1;
        // Quotes are ASCII, so both ends are char boundaries of the valid UTF-8 `text`.
        self.text.get(start..start + len)
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    /// A JSON integer that fits a `u64`: digits, no sign, no leading zero, and not the
    /// integer part of a float.
    fn uint(&mut self) -> Option<u64> {
        self.peek()?;
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(&b) = self.bytes.get(self.pos)
            && b.is_ascii_digit()
        {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || (digits > 1 && self.bytes.get(start) == Some(&b'0')) {
            return None;
        }
        match self.bytes.get(self.pos) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(value),
        }
    }

    /// Consumes `word` (`null`, `true`, `false`) when it comes next.
    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self.peek().is_some()
            && self
                .bytes
                .get(self.pos..)
                .is_some_and(|rest| rest.starts_with(word));
        if found {
            self.pos += word.len();
        }
        found
    }

    /// `null` as `None`, else what `read` reads.
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal(b"null") {
            return Some(None);
        }
        read(self).map(Some)
    }

    fn strings(&mut self) -> Option<Vec<String>> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(out);
        }
        loop {
            out.push(self.string()?);
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    /// `{"sub": "..."}` and nothing else.
    fn actor(&mut self) -> Option<Actor> {
        self.eat(b'{')?;
        if self.str()? != "sub" {
            return None;
        }
        self.eat(b':')?;
        let sub = self.string()?;
        self.eat(b'}')?;
        Some(Actor { sub })
    }

    fn audience(&mut self) -> Option<Audience> {
        if self.peek()? == b'[' {
            return self.strings().map(Audience::Many);
        }
        self.string().map(Audience::One)
    }

    /// The value of an unknown claim, when it is a scalar.
    fn scalar(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'0'..=b'9' => self.uint().map(Value::from),
            _ if self.literal(b"null") => Some(Value::Null),
            _ if self.literal(b"true") => Some(Value::Bool(true)),
            _ if self.literal(b"false") => Some(Value::Bool(false)),
            _ => None,
        }
    }

    fn claims(&mut self) -> Option<Claims> {
        let (mut iss, mut sub, mut exp) = (None, None, None);
        let (mut sid, mut jti, mut org_id, mut role, mut client_id) =
            (None, None, None, None, None);
        let (mut iat, mut nbf, mut auth_time) = (None, None, None);
        let (mut roles, mut permissions, mut entitlements, mut feature_flags) =
            (None, None, None, None);
        let (mut act, mut aud) = (None, None);
        let mut extra = Map::new();

        self.eat(b'{')?;
        loop {
            let name = self.str()?;
            self.eat(b':')?;
            match name {
                "iss" => first(&mut iss, self.string()?)?,
                "sub" => first(&mut sub, self.string()?)?,
                "exp" => first(&mut exp, self.uint()?)?,
                "sid" => first(&mut sid, self.nullable(Self::string)?)?,
                "jti" => first(&mut jti, self.nullable(Self::string)?)?,
                "org_id" => first(&mut org_id, self.nullable(Self::string)?)?,
                "role" => first(&mut role, self.nullable(Self::string)?)?,
                "client_id" => first(&mut client_id, self.nullable(Self::string)?)?,
                "iat" => first(&mut iat, self.nullable(Self::uint)?)?,
                "nbf" => first(&mut nbf, self.nullable(Self::uint)?)?,
                "auth_time" => first(&mut auth_time, self.nullable(Self::uint)?)?,
                "roles" => first(&mut roles, self.strings()?)?,
                "permissions" => first(&mut permissions, self.strings()?)?,
                "entitlements" => first(&mut entitlements, self.strings()?)?,
                "feature_flags" => first(&mut feature_flags, self.strings()?)?,
                "act" => first(&mut act, self.nullable(Self::actor)?)?,
                "aud" => first(&mut aud, self.nullable(Self::audience)?)?,
                _ => {
                    let value = self.scalar()?;
                    if extra.insert(name.to_owned(), value).is_some() {
                        return None;
                    }
                }
            }
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        // Nothing but whitespace may follow the object.
        if self.peek().is_some() {
            return None;
        }
        Some(Claims {
            iss: iss?,
            sub: sub?,
            sid: sid.flatten(),
            jti: jti.flatten(),
            iat: iat.flatten(),
            exp: exp?,
            nbf: nbf.flatten(),
            org_id: org_id.flatten(),
            role: role.flatten(),
            roles: roles.unwrap_or_default(),
            permissions: permissions.unwrap_or_default(),
            entitlements: entitlements.unwrap_or_default(),
            feature_flags: feature_flags.unwrap_or_default(),
            act: act.flatten(),
            auth_time: auth_time.flatten(),
            client_id: client_id.flatten(),
            aud: aud.flatten(),
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The strict serde path alone.
    fn strict(text: &str) -> Result<Claims, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The shortcut's contract: when it answers, the strict path answers the same.
    fn assert_agrees(text: &str) -> bool {
        match read(text) {
            Some(fast) => {
                match strict(text) {
                    Ok(slow) => assert_eq!(fast, slow, "{text}"),
                    Err(e) => panic!("the shortcut accepted what serde refuses ({e}): {text}"),
                }
                true
            }
            None => false,
        }
    }

    const WORKOS: &str = r#"{"iss":"https://api.workos.com/user_management/client_01","sub":"user_01","sid":"session_01K4EZC6PYSEB5JWSKFDZFGWDB","jti":"01K4EZCJYF91797FMG152DW48H","org_id":"org_01","role":"admin","roles":["admin","member"],"permissions":["users:read","users:write"],"entitlements":["pro"],"feature_flags":["beta"],"exp":1757144604,"iat":1757144304,"auth_time":1757144000,"client_id":"client_01","act":{"sub":"admin@corp.com"},"email":"a@b.c","sub_profile":"user","n":0,"ok":true,"no":false,"none":null}"#;

    #[test]
    fn workos_payloads_take_the_shortcut_and_read_as_serde_reads_them() {
        for text in [
            WORKOS,
            r#"{"iss":"i","sub":"u","exp":1}"#,
            r#" { "iss" : "i" ,  "sub":"u", "exp" : 0 }  "#,
            r#"{"iss":"i","sub":"u","exp":1,"sid":null,"iat":null,"act":null,"aud":null,"roles":[]}"#,
            r#"{"iss":"i","sub":"u","exp":18446744073709551615,"aud":"client_1"}"#,
            r#"{"iss":"i","sub":"u","exp":1,"aud":["a","client_1"],"":"empty name"}"#,
            r#"{"iss":"","sub":"ü → ✓","exp":1,"nbf":5}"#,
        ] {
            assert!(assert_agrees(text), "expected the shortcut to take {text}");
        }
    }

    #[test]
    fn anything_outside_the_shape_is_left_to_serde() {
        for text in [
            // Escapes, which could spell a known name or hide a repeat.
            r#"{"\u0069ss":"i","sub":"u","exp":1}"#,
            r#"{"iss":"i\"","sub":"u","exp":1}"#,
            r#"{"iss":"i","sub":"u","exp":1,"t\u0065nant":"a","tenant":"b"}"#,
            // Repeats, of named and unknown claims, even after a null.
            r#"{"iss":"i","sub":"u","exp":1,"exp":2}"#,
            r#"{"iss":"i","sub":"u","exp":1,"org_id":null,"org_id":"org_evil"}"#,
            r#"{"iss":"i","sub":"u","exp":1,"roles":[],"roles":["admin"]}"#,
            r#"{"iss":"i","sub":"u","exp":1,"tenant":"a","tenant":"b"}"#,
            // Numbers that are no u64.
            r#"{"iss":"i","sub":"u","exp":1.5}"#,
            r#"{"iss":"i","sub":"u","exp":1e9}"#,
            r#"{"iss":"i","sub":"u","exp":-1}"#,
            r#"{"iss":"i","sub":"u","exp":01}"#,
            r#"{"iss":"i","sub":"u","exp":18446744073709551616}"#,
            r#"{"iss":"i","sub":"u","exp":"1"}"#,
            r#"{"iss":"i","sub":"u","exp":1,"n":-3}"#,
            // Values the shape does not hold.
            r#"{"iss":"i","sub":"u","exp":1,"meta":{"x":1}}"#,
            r#"{"iss":"i","sub":"u","exp":1,"list":["a"]}"#,
            r#"{"iss":"i","sub":"u","exp":1,"act":{"sub":"a","x":1}}"#,
            r#"{"iss":"i","sub":"u","exp":1,"act":{}}"#,
            r#"{"iss":"i","sub":"u","exp":1,"permissions":[1]}"#,
            r#"{"iss":"i","sub":"u","exp":1,"permissions":null}"#,
            r#"{"iss":null,"sub":"u","exp":1}"#,
            r#"{"iss":"i","sub":"u","exp":1,"aud":5}"#,
            // Missing required claims.
            r#"{"iss":"i","sub":"u"}"#,
            r#"{"iss":"i","exp":1}"#,
            r#"{}"#,
            // Whitespace other than spaces, which compact JSON never has.
            " {\n\t\"iss\" : \"i\" ,\r\n \"sub\":\"u\", \"exp\" : 0 } \n",
            // Malformed JSON.
            r#"{"iss":"i","sub":"u","exp":1,}"#,
            r#"{"iss":"i","sub":"u","exp":1} x"#,
            r#"{"iss":"i","sub":"u","exp":1"#,
            r#"{"iss":"i","sub":"u","exp":1,"ok":nul}"#,
            r#"{"iss":"i","sub":"u","exp":1,"ok":truex}"#,
            r#"{"iss":"i","sub":"u","exp":1x}"#,
            "{\"iss\":\"i\u{1}\",\"sub\":\"u\",\"exp\":1}",
            "",
            "[]",
        ] {
            assert!(read(text).is_none(), "the shortcut took {text}");
        }
    }

    /// Pieces of payloads, well- and ill-formed, that the generator strings together.
    const NAMES: &[&str] = &[
        "Iss",
        "iss ",
        "é",
        "iss",
        "sub",
        "exp",
        "sid",
        "jti",
        "org_id",
        "role",
        "client_id",
        "iat",
        "nbf",
        "auth_time",
        "roles",
        "permissions",
        "entitlements",
        "feature_flags",
        "act",
        "aud",
        "email",
        "tenant",
        "",
        "\\u0069ss",
        "ex\\\"p",
    ];
    const VALUES: &[&str] = &[
        "-0",
        "[ ]",
        "{ \"sub\" : \"x\" }",
        "\"i\"",
        "\"user_01\"",
        "\"\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"é\"",
        "0",
        "1",
        "01",
        "-1",
        "1.0",
        "1e3",
        "1E3",
        "18446744073709551615",
        "18446744073709551616",
        "null",
        "true",
        "false",
        "nul",
        "[]",
        "[\"a\"]",
        "[\"a\",\"b\"]",
        "[\"a\",]",
        "[1]",
        "[null]",
        "{}",
        "{\"sub\":\"x\"}",
        "{\"sub\":\"x\",\"sub\":\"y\"}",
        "{\"sub\":1}",
        "{\"x\":1}",
        "\"",
    ];
    const SPACES: &[&str] = &["", "", "", " ", "  "];
    /// Whitespace for the payloads, one in five of which also use JSON's other whitespace.
    const ANY_WHITESPACE: &[&str] = &["", " ", "\n", "\t", "\r\n "];

    fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
        from[rng.random_range(0..from.len())]
    }

    /// A value in the shape for the claim `name`, which the strict path accepts.
    fn good_value(rng: &mut StdRng, name: &str) -> &'static str {
        let choices: &[&str] = match name {
            "exp" | "iat" | "nbf" | "auth_time" => &["0", "1757144604", "18446744073709551615"],
            "roles" | "permissions" | "entitlements" | "feature_flags" => {
                &["[]", "[\"a\"]", "[ \"a\" , \"b\" ]"]
            }
            "act" => &["{\"sub\":\"x\"}", "null"],
            "aud" => &["\"c\"", "[\"c\",\"d\"]", "null"],
            "iss" | "sub" => &["\"i\"", "\"\""],
            "sid" | "jti" | "org_id" | "role" | "client_id" => &["\"s\"", "null"],
            _ => &["\"v\"", "7", "true", "false", "null"],
        };
        pick(rng, choices)
    }

    fn payload(rng: &mut StdRng) -> String {
        let space_set = if rng.random_bool(0.8) {
            SPACES
        } else {
            ANY_WHITESPACE
        };
        let mut out = String::from(pick(rng, space_set));
        out.push('{');
        // Mostly valid members first, so many payloads are in the shape.
        let mut members = vec![
            r#""iss":"i""#.to_owned(),
            r#""sub":"u""#.to_owned(),
            r#""exp":1"#.to_owned(),
        ];
        members.retain(|_| rng.random_bool(0.9));
        for _ in 0..rng.random_range(0..6) {
            let space = pick(rng, space_set);
            let name = pick(rng, NAMES);
            let value = if rng.random_bool(0.85) {
                good_value(rng, name)
            } else {
                pick(rng, VALUES)
            };
            members.push(format!("\"{name}\"{space}:{space}{value}"));
        }
        let at = rng.random_range(0..=members.len());
        members.rotate_left(at);
        for (i, member) in members.iter().enumerate() {
            if i > 0 {
                out.push_str(if rng.random_bool(0.98) { "," } else { ";" });
            }
            out.push_str(pick(rng, space_set));
            out.push_str(member);
        }
        out.push_str(pick(rng, space_set));
        out.push_str(if rng.random_bool(0.98) { "}" } else { "}}" });
        out.push_str(pick(rng, space_set));
        out
    }

    #[test]
    fn generated_payloads_never_read_differently_from_serde() {
        let mut rng = StdRng::seed_from_u64(0x5eed_c1a1);
        let (mut taken, total) = (0, 50_000);
        for _ in 0..total {
            taken += usize::from(assert_agrees(&payload(&mut rng)));
        }
        // The comparison only means something if both answers occur often.
        assert!(
            taken > total / 10 && taken < total * 9 / 10,
            "{taken} of {total}"
        );
    }
}
