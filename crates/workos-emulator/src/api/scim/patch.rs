//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource held as JSON.
//!
//! Operations `add`, `replace`, `remove` (case-insensitive: Entra sends `Replace`), with or
//! without `path`. Paths: `attr`, `attr.sub`, URN-qualified (`urn:…:User:department`),
//! value-filtered (`emails[type eq "work"].value`, `members[value eq "…"]`). Without a path the
//! value is an object whose keys may themselves be dotted or URN-qualified (Entra sends
//! `{"name.givenName": "Ann"}`). `remove` of a multi-valued attribute with a `value` array
//! removes just those elements (Entra's way of removing group members).
//!
//! Groups are patched with their `members` inlined as `[{value}]`; the caller diffs the result
//! against the stored membership, so every member change is found however it was expressed.

use serde_json::{Map, Value};

use super::filter::{Filter, get_ci, split_urn};

/// Why a PATCH could not be applied; each maps to a SCIM `scimType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a PatchOp message (`invalidSyntax`).
    #[error("{0}")]
    Syntax(String),
    /// A path cannot be read (`invalidPath`).
    #[error("{0}")]
    Path(String),
    /// A value filter selects nothing, or `remove` has no path (`noTarget`).
    #[error("{0}")]
    NoTarget(String),
    /// A value has the wrong shape (`invalidValue`).
    #[error("{0}")]
    Value(String),
}

/// The PatchOp message schema.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// What to do.
    pub op: OpKind,
    /// Where; `None` means the resource itself.
    pub path: Option<String>,
    /// The value (absent for most removes).
    pub value: Option<Value>,
}

/// PATCH operation kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Add (multi-valued attributes gain values).
    Add,
    /// Replace.
    Replace,
    /// Remove.
    Remove,
}

/// Reads the `Operations` of a PatchOp body.
pub fn parse(body: &Value) -> Result<Vec<Operation>, PatchError> {
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| PatchError::Syntax("A PatchOp body needs an `Operations` array.".into()))?;
    ops.iter()
        .map(|op| {
            let kind = match get_ci(op, "op")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
            {
                Some(k) if k == "add" => OpKind::Add,
                Some(k) if k == "replace" => OpKind::Replace,
                Some(k) if k == "remove" => OpKind::Remove,
                _ => {
                    return Err(PatchError::Syntax(
                        "Each operation needs `op`: add, replace or remove.".into(),
                    ));
                }
            };
            let path = match get_ci(op, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(p.trim().to_owned()),
                Some(_) => return Err(PatchError::Path("`path` must be a string.".into())),
            };
            Ok(Operation {
                op: kind,
                path,
                value: get_ci(op, "value").cloned(),
            })
        })
        .collect()
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    urn: Option<String>,
    attr: String,
    filter: Option<Filter>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Result<Target, PatchError> {
    let bad = || PatchError::Path(format!("Cannot read the path `{path}`."));
    let (urn, rest) = split_urn(path);
    let (attr, filter, after) = match rest.find('[') {
        Some(open) => {
            let close = rest.rfind(']').ok_or_else(bad)?;
            if close < open {
                return Err(bad());
            }
            let filter = Filter::parse(&rest[open + 1..close])
                .map_err(|e| PatchError::Path(format!("Bad value filter in `{path}`: {}", e.0)))?;
            (&rest[..open], Some(filter), &rest[close + 1..])
        }
        None => match rest.split_once('.') {
            Some((attr, _)) => (attr, None, &rest[attr.len()..]),
            None => (rest, None, ""),
        },
    };
    let sub = match after {
        "" => None,
        s => Some(s.strip_prefix('.').ok_or_else(bad)?.to_owned()),
    };
    if attr.is_empty()
        || !attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    {
        return Err(bad());
    }
    Ok(Target {
        urn: urn.map(str::to_owned),
        attr: attr.to_owned(),
        filter,
        sub,
    })
}

/// The key in `map` equal to `key` ignoring case, else `key` itself.
fn key_in(map: &Map<String, Value>, key: &str) -> String {
    map.keys()
        .find(|k| k.eq_ignore_ascii_case(key))
        .cloned()
        .unwrap_or_else(|| key.to_owned())
}

/// The object under `key` (created, or replacing a non-object value).
fn object_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, PatchError> {
    let key = key_in(map, key);
    let slot = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| PatchError::Value("Expected an object.".into()))
}

fn same_element(a: &Value, b: &Value) -> bool {
    match (get_ci(a, "value"), get_ci(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Applies every operation in order.
pub fn apply(resource: &mut Map<String, Value>, ops: &[Operation]) -> Result<(), PatchError> {
    for op in ops {
        match &op.path {
            None => apply_without_path(resource, op)?,
            Some(path) => apply_at(resource, op, &parse_path(path)?)?,
        }
    }
    Ok(())
}

fn apply_without_path(resource: &mut Map<String, Value>, op: &Operation) -> Result<(), PatchError> {
    if op.op == OpKind::Remove {
        return Err(PatchError::NoTarget("`remove` needs a `path`.".into()));
    }
    let Some(Value::Object(values)) = &op.value else {
        return Err(PatchError::Value(
            "Without a `path`, `value` must be an object.".into(),
        ));
    };
    for (key, value) in values {
        let lower = key.to_ascii_lowercase();
        let is_schema_extension = lower.starts_with("urn:")
            && (lower.ends_with(":user") || lower.ends_with(":group"))
            && value.is_object();
        if is_schema_extension && let Value::Object(inner) = value {
            // `{"urn:…:enterprise:2.0:User": {"department": "Ops"}}`: merge into the extension.
            let target = object_at(resource, key)?;
            for (k, v) in inner {
                let existing = key_in(target, k);
                if op.op == OpKind::Add {
                    merge_into(target, &existing, v.clone());
                } else {
                    target.insert(existing, v.clone());
                }
            }
            continue;
        }
        let single = Operation {
            op: op.op,
            path: Some(key.clone()),
            value: Some(value.clone()),
        };
        apply_at(resource, &single, &parse_path(key)?)?;
    }
    Ok(())
}

/// `add` semantics: arrays gain new elements, objects gain members, other values are set.
fn merge_into(map: &mut Map<String, Value>, key: &str, value: Value) {
    match (map.get_mut(key), value) {
        (Some(Value::Array(existing)), Value::Array(new)) => {
            for v in new {
                if !existing.iter().any(|e| same_element(e, &v)) {
                    existing.push(v);
                }
            }
        }
        (Some(Value::Array(existing)), v) => {
            if !existing.iter().any(|e| same_element(e, &v)) {
                existing.push(v);
            }
        }
        (Some(Value::Object(existing)), Value::Object(new)) => {
            for (k, v) in new {
                let k = key_in(existing, &k);
                existing.insert(k, v);
            }
        }
        (_, v) => {
            map.insert(key.to_owned(), v);
        }
    }
}

fn apply_at(
    resource: &mut Map<String, Value>,
    op: &Operation,
    target: &Target,
) -> Result<(), PatchError> {
    let container: &mut Map<String, Value> = match &target.urn {
        Some(urn) => object_at(resource, urn)?,
        None => resource,
    };
    let attr = key_in(container, &target.attr);
    let value = || {
        op.value
            .clone()
            .ok_or_else(|| PatchError::Value("This operation needs a `value`.".into()))
    };
    match (&target.filter, op.op) {
        (None, OpKind::Remove) => {
            match (&target.sub, &op.value, container.get_mut(&attr)) {
                (Some(sub), _, Some(Value::Object(inner))) => {
                    let k = key_in(inner, sub);
                    inner.remove(&k);
                }
                (Some(sub), _, Some(Value::Array(items))) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        let k = key_in(item, sub);
                        item.remove(&k);
                    }
                }
                (None, Some(Value::Array(values)), Some(Value::Array(items))) => {
                    items.retain(|e| !values.iter().any(|v| same_element(e, v)));
                }
                (None, Some(v @ Value::Object(_)), Some(Value::Array(items))) => {
                    items.retain(|e| !same_element(e, v));
                }
                (None, _, _) => {
                    container.remove(&attr);
                }
                (Some(_), _, _) => {}
            }
            Ok(())
        }
        (None, kind) => {
            let value = value()?;
            match &target.sub {
                Some(sub) => {
                    let inner = object_at(container, &attr)?;
                    let k = key_in(inner, sub);
                    if kind == OpKind::Add {
                        merge_into(inner, &k, value);
                    } else {
                        inner.insert(k, value);
                    }
                }
                None if kind == OpKind::Add => merge_into(container, &attr, value),
                None => {
                    container.insert(attr, value);
                }
            }
            Ok(())
        }
        (Some(filter), kind) => {
            let Some(Value::Array(items)) = container.get_mut(&attr) else {
                return if kind == OpKind::Remove {
                    Ok(())
                } else {
                    Err(PatchError::NoTarget(format!(
                        "`{}` has no values to filter.",
                        target.attr
                    )))
                };
            };
            if kind == OpKind::Remove {
                match &target.sub {
                    None => items.retain(|e| !filter.matches(e)),
                    Some(sub) => {
                        for item in items.iter_mut().filter(|e| filter.matches(e)) {
                            if let Value::Object(inner) = item {
                                let k = key_in(inner, sub);
                                inner.remove(&k);
                            }
                        }
                    }
                }
                return Ok(());
            }
            let value = value()?;
            let mut hit = false;
            for item in items.iter_mut().filter(|e| filter.matches(e)) {
                hit = true;
                match (&target.sub, item) {
                    (Some(sub), Value::Object(inner)) => {
                        let k = key_in(inner, sub);
                        inner.insert(k, value.clone());
                    }
                    (None, Value::Object(inner)) => match &value {
                        Value::Object(new) => {
                            for (k, v) in new {
                                let k = key_in(inner, k);
                                inner.insert(k, v.clone());
                            }
                        }
                        other => {
                            return Err(PatchError::Value(format!(
                                "Expected an object for `{}`, got {other}.",
                                target.attr
                            )));
                        }
                    },
                    (_, slot) => *slot = value.clone(),
                }
            }
            if hit {
                Ok(())
            } else {
                Err(PatchError::NoTarget(format!(
                    "No value of `{}` matches the filter.",
                    target.attr
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(resource: Value, ops: Value) -> Result<Value, PatchError> {
        let mut map = resource.as_object().cloned().unwrap();
        let ops = parse(&json!({"schemas": [PATCH_OP], "Operations": ops}))?;
        apply(&mut map, &ops)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn replace_without_path_sets_active_and_dotted_keys() {
        let out = patch(
            json!({"userName": "a", "active": true, "name": {"givenName": "A"}}),
            json!([{"op": "Replace", "value": {"active": false, "name.familyName": "Lee"}}]),
        )
        .unwrap();
        assert_eq!(out["active"], false);
        assert_eq!(out["name"], json!({"givenName": "A", "familyName": "Lee"}));
    }

    #[test]
    fn replace_with_path_and_sub_attribute() {
        let out = patch(
            json!({"name": {"givenName": "A"}}),
            json!([{"op": "replace", "path": "name.givenName", "value": "Ann"},
                   {"op": "replace", "path": "active", "value": false}]),
        )
        .unwrap();
        assert_eq!(out["name"]["givenName"], "Ann");
        assert_eq!(out["active"], false);
    }

    #[test]
    fn members_are_added_once_and_removed_by_value_filter_or_value_list() {
        let group = json!({"displayName": "Eng", "members": [{"value": "u1"}]});
        let out = patch(
            group.clone(),
            json!([{"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}, {"value": "u3"}]}]),
        )
        .unwrap();
        assert_eq!(
            out["members"],
            json!([{"value": "u1"}, {"value": "u2"}, {"value": "u3"}])
        );
        let out = patch(
            out,
            json!([{"op": "remove", "path": "members[value eq \"u2\"]"},
                   {"op": "Remove", "path": "members", "value": [{"value": "u3"}]}]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u1"}]));
        let out = patch(out, json!([{"op": "remove", "path": "members"}])).unwrap();
        assert!(out.get("members").is_none());
        let out = patch(
            group,
            json!([{"op": "replace", "path": "members", "value": [{"value": "u9"}]}]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u9"}]));
    }

    #[test]
    fn filtered_paths_change_matching_elements_only() {
        let user = json!({"emails": [{"value": "a@w.test", "type": "work", "primary": true},
                                     {"value": "a@h.test", "type": "home"}]});
        let out = patch(
            user.clone(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@w.test"}]),
        )
        .unwrap();
        assert_eq!(out["emails"][0]["value"], "b@w.test");
        assert_eq!(out["emails"][1]["value"], "a@h.test");
        let err = patch(
            user,
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x"}]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::NoTarget(_)));
    }

    #[test]
    fn urn_paths_reach_the_enterprise_extension() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let out = patch(
            json!({}),
            json!([{"op": "add", "path": format!("{urn}:department"), "value": "Ops"},
                   {"op": "add", "value": {urn: {"employeeNumber": "7"}}}]),
        )
        .unwrap();
        assert_eq!(
            out[urn],
            json!({"department": "Ops", "employeeNumber": "7"})
        );
    }

    #[test]
    fn bad_messages_are_typed() {
        assert!(matches!(
            parse(&json!({"schemas": [PATCH_OP]})),
            Err(PatchError::Syntax(_))
        ));
        assert!(matches!(
            patch(json!({}), json!([{"op": "move", "path": "a"}])),
            Err(PatchError::Syntax(_))
        ));
        assert!(matches!(
            patch(json!({}), json!([{"op": "remove"}])),
            Err(PatchError::NoTarget(_))
        ));
        assert!(matches!(
            patch(json!({}), json!([{"op": "add", "path": "a b", "value": 1}])),
            Err(PatchError::Path(_))
        ));
        assert!(matches!(
            patch(json!({}), json!([{"op": "replace", "value": "x"}])),
            Err(PatchError::Value(_))
        ));
    }
}
