//! Standard claims (OIDC Core §5.1), released by scope (§5.4) or by the `claims`
//! request parameter (§5.5).

use serde_json::{Map, Value, json};

use crate::store::users::User;

pub const PROFILE: [&str; 14] = [
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];

/// Every claim we can release (discovery `claims_supported`).
pub fn supported() -> Vec<&'static str> {
    let mut v = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "at_hash",
        "sid",
    ];
    v.extend(PROFILE);
    v.extend([
        "email",
        "email_verified",
        "address",
        "phone_number",
        "phone_number_verified",
    ]);
    v
}

/// OIDC Core §5.4: the claims a scope stands for.
pub fn for_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &PROFILE,
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

/// Claim names asked for in `claims.<member>` (OIDC Core §5.5), `member` being
/// `userinfo` or `id_token`.
pub fn requested(claims_param: Option<&Value>, member: &str) -> Vec<String> {
    claims_param
        .and_then(|c| c.get(member))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// OIDC Core §5.5: the parameter is a JSON object whose `userinfo` and `id_token` members
/// are objects of claim requests (null or an object with essential/value/values).
pub fn check_claims_param(v: &Value) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or("the claims parameter must be a JSON object")?;
    for (member, reqs) in obj {
        if member != "userinfo" && member != "id_token" {
            continue;
        }
        let reqs = reqs
            .as_object()
            .ok_or(format!("claims.{member} must be an object"))?;
        for (name, r) in reqs {
            if !(r.is_null() || r.is_object()) {
                return Err(format!("claims.{member}.{name} must be null or an object"));
            }
        }
    }
    Ok(())
}

/// The value of one claim for `user`, with the JSON type the spec gives it.
pub fn value(user: &User, name: &str) -> Option<Value> {
    match name {
        "sub" => Some(json!(user.id)),
        "email" => Some(json!(user.email)),
        "email_verified" => Some(json!(user.email_verified)),
        "updated_at" => Some(json!(user.updated_at)),
        "phone_number_verified" => user
            .claims
            .get(name)
            .map(|v| json!(v.as_bool().unwrap_or(false))),
        _ => user.claims.get(name).filter(|v| !v.is_null()).cloned(),
    }
}

/// The claims for `names`, skipping those the user does not have.
pub fn select<'a>(user: &User, names: impl IntoIterator<Item = &'a str>) -> Map<String, Value> {
    let mut out = Map::new();
    for n in names {
        if let Some(v) = value(user, n) {
            out.insert(n.to_string(), v);
        }
    }
    out
}
