//! SCIM filter expressions (RFC 7644 §3.4.2.2), as used by `GET …?filter=` and inside PATCH
//! value paths (`members[value eq "…"]`).
//!
//! Supported: `eq ne co sw ew pr gt ge lt le` over attribute paths (`userName`, `name.givenName`,
//! `emails.value`, URN-qualified paths), joined by `and` (binding tighter) and `or`. Not
//! supported: parentheses, `not`, and value-path brackets inside a top-level filter; these are
//! refused as `invalidFilter` rather than guessed. Strings compare case-insensitively, as the
//! core schema marks nearly every string attribute `caseExact: false`; `id` is the exception
//! callers handle (it is matched exactly by the store).
//!
//! Hand-written because no crate among our dependencies parses SCIM filters, and the subset
//! SCIM clients send (Okta, Entra) is small.

use serde_json::Value;

/// Why a filter could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter: {0}")]
pub struct FilterError(pub String);

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Contains.
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Present (has a non-null, non-empty value).
    Pr,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less or equal.
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "pr" => Self::Pr,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

/// `attribute op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Attribute path as written (`userName`, `name.givenName`, `urn:…:User:department`).
    pub path: String,
    /// Operator.
    pub op: Op,
    /// Comparison value (`Null` for `pr`).
    pub value: Value,
}

/// A filter: OR of AND-groups of comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Any group matching makes the filter match; a group matches when all its comparisons do.
    pub any_of: Vec<Vec<Comparison>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Literal(Value),
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(FilterError("unterminated string".into()));
            }
            i += 1;
            let raw: String = chars[start..i].iter().collect();
            let value: Value = serde_json::from_str(&raw)
                .map_err(|_| FilterError(format!("bad string literal {raw}")))?;
            tokens.push(Token::Literal(value));
        } else if c == '(' || c == ')' || c == '[' || c == ']' {
            return Err(FilterError(format!(
                "`{c}` is not supported in filters here"
            )));
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(tokens)
}

impl Filter {
    /// Parses a filter expression.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(FilterError("empty filter".into()));
        }
        let mut any_of = vec![Vec::new()];
        let mut i = 0;
        loop {
            let Some(Token::Word(path)) = tokens.get(i) else {
                return Err(FilterError("expected an attribute name".into()));
            };
            let op = match tokens.get(i + 1) {
                Some(Token::Word(w)) => {
                    Op::parse(w).ok_or_else(|| FilterError(format!("unknown operator `{w}`")))?
                }
                _ => return Err(FilterError(format!("expected an operator after `{path}`"))),
            };
            let (value, next) = if op == Op::Pr {
                (Value::Null, i + 2)
            } else {
                let value = match tokens.get(i + 2) {
                    Some(Token::Literal(v)) => v.clone(),
                    Some(Token::Word(w)) => match w.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        "null" => Value::Null,
                        other => serde_json::from_str::<serde_json::Number>(other)
                            .map(Value::Number)
                            .map_err(|_| FilterError(format!("bad value `{other}`")))?,
                    },
                    None => return Err(FilterError(format!("expected a value after `{path}`"))),
                };
                (value, i + 3)
            };
            if let Some(group) = any_of.last_mut() {
                group.push(Comparison {
                    path: path.clone(),
                    op,
                    value,
                });
            }
            match tokens.get(next) {
                None => break,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {}
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("or") => any_of.push(Vec::new()),
                Some(_) => return Err(FilterError("expected `and` or `or`".into())),
            }
            i = next + 1;
        }
        Ok(Self { any_of })
    }

    /// The single `attribute eq "string"` this filter is, if it is exactly that.
    pub fn single_eq(&self) -> Option<(&str, &str)> {
        match self.any_of.as_slice() {
            [group] => match group.as_slice() {
                [
                    Comparison {
                        path,
                        op: Op::Eq,
                        value: Value::String(v),
                    },
                ] => Some((path.as_str(), v.as_str())),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether a resource (or a multi-valued attribute's element) matches.
    pub fn matches(&self, resource: &Value) -> bool {
        self.any_of
            .iter()
            .any(|group| group.iter().all(|c| c.matches(resource)))
    }
}

/// The values at an attribute path: URN prefix, dotted sub-attributes, arrays flattened, keys
/// matched case-insensitively.
pub fn lookup<'a>(resource: &'a Value, path: &str) -> Vec<&'a Value> {
    let (container, rest) = split_urn(path);
    let mut current: Vec<&Value> = vec![resource];
    if let Some(urn) = container {
        current = current.into_iter().filter_map(|v| get_ci(v, urn)).collect();
    }
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for v in current {
            match v {
                Value::Array(items) => {
                    next.extend(items.iter().filter_map(|item| get_ci(item, part)));
                }
                other => next.extend(get_ci(other, part)),
            }
        }
        current = next;
    }
    current
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect()
}

/// Splits `urn:…:Schema:attr.sub` into (`urn:…:Schema`, `attr.sub`); other paths have no URN.
pub fn split_urn(path: &str) -> (Option<&str>, &str) {
    if path.len() > 4 && path[..4].eq_ignore_ascii_case("urn:") {
        let head = path.split('[').next().unwrap_or(path);
        if let Some(pos) = head.rfind(':') {
            return (Some(&path[..pos]), &path[pos + 1..]);
        }
    }
    (None, path)
}

/// Case-insensitive member lookup.
pub fn get_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn lower(v: &Value) -> Option<String> {
    v.as_str().map(str::to_lowercase)
}

impl Comparison {
    fn matches(&self, resource: &Value) -> bool {
        let raw = lookup(resource, &self.path);
        if self.op == Op::Pr {
            return raw.iter().any(|v| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            });
        }
        // A multi-valued complex attribute compared as a whole compares its `value`s.
        let found: Vec<&Value> = raw
            .into_iter()
            .filter_map(|v| {
                if v.is_object() {
                    get_ci(v, "value")
                } else {
                    Some(v)
                }
            })
            .collect();
        match self.op {
            Op::Pr => false,
            Op::Ne => !found.iter().any(|v| equal(v, &self.value)),
            Op::Eq => found.iter().any(|v| equal(v, &self.value)),
            Op::Co | Op::Sw | Op::Ew => {
                let Some(needle) = lower(&self.value) else {
                    return false;
                };
                found
                    .iter()
                    .filter_map(|v| lower(v))
                    .any(|hay| match self.op {
                        Op::Co => hay.contains(&needle),
                        Op::Sw => hay.starts_with(&needle),
                        _ => hay.ends_with(&needle),
                    })
            }
            Op::Gt | Op::Ge | Op::Lt | Op::Le => found.iter().any(|v| {
                let ordering = match (v, &self.value) {
                    (Value::Number(a), Value::Number(b)) => a
                        .as_f64()
                        .zip(b.as_f64())
                        .and_then(|(a, b)| a.partial_cmp(&b)),
                    (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                    _ => None,
                };
                matches!(
                    (self.op, ordering),
                    (Op::Gt, Some(std::cmp::Ordering::Greater))
                        | (
                            Op::Ge,
                            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        )
                        | (Op::Lt, Some(std::cmp::Ordering::Less))
                        | (
                            Op::Le,
                            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        )
                )
            }),
        }
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.to_lowercase() == b.to_lowercase(),
        // Entra sends booleans as strings in places.
        (Value::String(s), Value::Bool(b)) | (Value::Bool(b), Value::String(s)) => {
            s.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "userName": "Ann@Acme.test",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"value": "ann@acme.test", "type": "work", "primary": true},
                       {"value": "ann@home.test", "type": "home"}],
            "active": true,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}
        })
    }

    #[test]
    fn single_eq_is_recognised_for_the_fast_path() {
        let f = Filter::parse(r#"userName eq "bjensen@example.com""#).unwrap();
        assert_eq!(f.single_eq(), Some(("userName", "bjensen@example.com")));
        assert!(
            Filter::parse(r#"a eq "x" and b eq "y""#)
                .unwrap()
                .single_eq()
                .is_none()
        );
    }

    #[test]
    fn comparisons_follow_paths_case_insensitively() {
        let u = user();
        for (filter, want) in [
            (r#"username eq "ann@acme.TEST""#, true),
            (r#"name.givenName sw "an""#, true),
            (r#"emails.value co "home""#, true),
            (r#"emails eq "ann@acme.test""#, true),
            (r#"emails.type eq "other""#, false),
            ("active eq true", true),
            ("active eq false", false),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "ops""#,
                true,
            ),
            ("title pr", false),
            ("name pr", true),
            (r#"userName eq "x" or name.familyName eq "Lee""#, true),
            (
                r#"userName eq "x" or name.familyName eq "Lee" and active eq false"#,
                false,
            ),
        ] {
            assert_eq!(Filter::parse(filter).unwrap().matches(&u), want, "{filter}");
        }
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in [
            "",
            "userName",
            "userName eq",
            r#"userName xx "a""#,
            r#"userName eq "a"#,
            r#"(userName eq "a")"#,
            r#"emails[type eq "work"]"#,
            r#"userName eq "a" and"#,
            r#"userName eq "a" "b""#,
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }
}
