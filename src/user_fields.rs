//! Custom user fields declared in config (`[[sign_up.fields]]`, Better Auth's
//! `user.additionalFields`): checked at start (`check_declaration`), validated at
//! sign-up (`for_create`) and in `update-user` (`for_update`), stored as a JSON object
//! in `users.fields` and returned as top-level keys of the User JSON.
//!
//! As Better Auth's `parseInputData` (packages/better-auth/src/db/schema.ts): keys
//! that are not declared are ignored, a field with `input = false` may not be sent
//! ("… is not allowed to be set") and takes its default, a required field missing at
//! sign-up is refused ("… is required").

use serde_json::{Map, Number, Value};

use crate::config::{UserFieldConfig, UserFieldType};

/// Keys of Better Auth's User and of the sign-up body: a custom field may not use them.
pub const BUILT_IN: [&str; 14] = [
    "id",
    "name",
    "email",
    "emailVerified",
    "image",
    "createdAt",
    "updatedAt",
    "password",
    "callbackURL",
    "rememberMe",
    "acceptTerms",
    "inviteCode",
    "termsVersion",
    "termsAcceptedAt",
];

/// The `max_length` of a string field without one.
pub const DEFAULT_STRING_MAX: usize = 256;

/// A value a client may not store: the field and why. Answered as 400
/// `VALIDATION_ERROR` with `[body.<field>] <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[body.{field}] {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(f: &UserFieldConfig, message: impl Into<String>) -> FieldError {
    FieldError {
        field: f.name.clone(),
        message: message.into(),
    }
}

/// Start-up check of one declaration (duplicates are checked by the caller).
pub fn check_declaration(f: &UserFieldConfig) -> Result<(), String> {
    let mut chars = f.name.chars();
    let camel = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && f.name.len() <= 64;
    if !camel {
        return Err("the name must be camelCase ASCII (`^[a-z][A-Za-z0-9]*$`, ≤ 64)".into());
    }
    if BUILT_IN.contains(&f.name.as_str()) {
        return Err("the name is a built-in user key".into());
    }
    let is = |k| f.kind == k;
    if f.max_length.is_some() && !is(UserFieldType::String) {
        return Err("max_length applies only to type = \"string\"".into());
    }
    if f.max_length == Some(0) {
        return Err("max_length must be at least 1".into());
    }
    if (f.min.is_some() || f.max.is_some()) && !is(UserFieldType::Number) {
        return Err("min and max apply only to type = \"number\"".into());
    }
    if f.min.is_some_and(|m| !m.is_finite()) || f.max.is_some_and(|m| !m.is_finite()) {
        return Err("min and max must be finite numbers".into());
    }
    if let (Some(lo), Some(hi)) = (f.min, f.max)
        && lo > hi
    {
        return Err("min must not be greater than max".into());
    }
    if is(UserFieldType::Enum) {
        if f.values.is_empty() || f.values.iter().any(|v| v.is_empty()) {
            return Err("an enum needs non-empty `values`".into());
        }
    } else if !f.values.is_empty() {
        return Err("values apply only to type = \"enum\"".into());
    }
    if let Some(d) = &f.default {
        value(f, d).map_err(|e| format!("default: {}", e.message))?;
    }
    if !f.input && f.required && f.default.is_none() {
        return Err("a required field with input = false needs a default".into());
    }
    Ok(())
}

/// A value checked against its declaration, normalised (numbers as JSON numbers).
pub fn value(f: &UserFieldConfig, v: &Value) -> Result<Value, FieldError> {
    match f.kind {
        UserFieldType::String => {
            let s = v.as_str().ok_or_else(|| err(f, "expected a string"))?;
            let max = f.max_length.unwrap_or(DEFAULT_STRING_MAX);
            if s.chars().count() > max {
                return Err(err(f, format!("at most {max} characters")));
            }
            Ok(Value::String(s.to_string()))
        }
        UserFieldType::Number => {
            let n = v
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| err(f, "expected a number"))?;
            if let Some(lo) = f.min
                && n < lo
            {
                return Err(err(f, format!("must be at least {lo}")));
            }
            if let Some(hi) = f.max
                && n > hi
            {
                return Err(err(f, format!("must be at most {hi}")));
            }
            // Keep integers integers (`42`, not `42.0`).
            Ok(match v.as_i64() {
                Some(i) => Value::Number(i.into()),
                None => Number::from_f64(n).map_or(Value::Null, Value::Number),
            })
        }
        UserFieldType::Boolean => v
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| err(f, "expected a boolean")),
        UserFieldType::Enum => {
            let s = v.as_str().ok_or_else(|| err(f, "expected a string"))?;
            if f.values.iter().any(|x| x == s) {
                Ok(Value::String(s.to_string()))
            } else {
                Err(err(f, format!("must be one of {}", f.values.join(", "))))
            }
        }
    }
}

/// The fields of a new account from a request `body` (sign-up). `trusted` (the CLI)
/// may set `input = false` fields and skip `required`. `null` counts as absent.
pub fn for_create(
    decls: &[UserFieldConfig],
    body: &Map<String, Value>,
    trusted: bool,
) -> Result<Map<String, Value>, FieldError> {
    let mut out = Map::new();
    for f in decls {
        let given = body.get(&f.name).filter(|v| !v.is_null());
        if let Some(v) = given {
            if !f.input && !trusted {
                return Err(err(f, "is not allowed to be set"));
            }
            out.insert(f.name.clone(), value(f, v)?);
        } else if let Some(d) = &f.default {
            out.insert(f.name.clone(), d.clone());
        } else if f.required && !trusted {
            return Err(err(f, "is required"));
        }
    }
    Ok(out)
}

/// Applies the declared fields present in an `update-user` body to `stored`; returns
/// whether any was given. `null` removes an optional field (a required one is refused).
pub fn for_update(
    decls: &[UserFieldConfig],
    body: &Map<String, Value>,
    stored: &mut Map<String, Value>,
) -> Result<bool, FieldError> {
    let mut any = false;
    for f in decls {
        let Some(v) = body.get(&f.name) else {
            continue;
        };
        if !f.input {
            return Err(err(f, "is not allowed to be set"));
        }
        any = true;
        if v.is_null() {
            if f.required {
                return Err(err(f, "is required"));
            }
            stored.remove(&f.name);
        } else {
            stored.insert(f.name.clone(), value(f, v)?);
        }
    }
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl(name: &str, kind: UserFieldType) -> UserFieldConfig {
        UserFieldConfig {
            name: name.into(),
            kind,
            ..UserFieldConfig::default()
        }
    }

    #[test]
    fn declarations_are_checked() {
        assert!(check_declaration(&decl("favoriteColor", UserFieldType::String)).is_ok());
        for bad in ["FavoriteColor", "favorite_color", "", "email", "inviteCode"] {
            assert!(
                check_declaration(&decl(bad, UserFieldType::String)).is_err(),
                "{bad}"
            );
        }
        let mut e = decl("plan", UserFieldType::Enum);
        assert!(check_declaration(&e).is_err());
        e.values = vec!["free".into(), "pro".into()];
        e.default = Some(json!("gold"));
        assert!(check_declaration(&e).is_err());
        e.default = Some(json!("free"));
        assert!(check_declaration(&e).is_ok());
        let mut n = decl("age", UserFieldType::Number);
        n.min = Some(18.0);
        n.max = Some(10.0);
        assert!(check_declaration(&n).is_err());
    }

    #[test]
    fn values_are_typed() {
        let mut n = decl("age", UserFieldType::Number);
        n.min = Some(0.0);
        assert_eq!(value(&n, &json!(42)), Ok(json!(42)));
        assert_eq!(value(&n, &json!(1.5)), Ok(json!(1.5)));
        assert!(value(&n, &json!(-1)).is_err());
        assert!(value(&n, &json!("42")).is_err());
        let b = decl("news", UserFieldType::Boolean);
        assert!(value(&b, &json!("true")).is_err());
        let mut r = decl("nick", UserFieldType::String);
        r.required = true;
        let m = json!({"other": 1}).as_object().cloned().unwrap_or_default();
        assert_eq!(
            for_create(&[r.clone()], &m, false).map_err(|e| e.to_string()),
            Err("[body.nick] is required".into())
        );
        assert_eq!(for_create(&[r], &m, true), Ok(Map::new()));
    }
}
