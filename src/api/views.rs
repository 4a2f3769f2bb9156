//! The JSON shapes `/api/auth/*` answers with (Better Auth's `User`, `Session` and the
//! route results). Handlers serialise these types, and the OpenAPI document
//! (`openapi.rs`) is generated from them, so the two cannot drift apart.

use schemars::JsonSchema;
use serde::Serialize;

use super::iso8601;
use crate::http::user_agent;
use crate::store::sessions::Session;
use crate::store::users::User;

/// Better Auth's `User`. `name` and `image` are the OIDC `name` and `picture` claims.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// The OIDC `sub`.
    pub id: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub image: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
    /// The terms-of-service version the user accepted (`sign_up.terms_version`).
    pub terms_version: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    pub terms_accepted_at: Option<String>,
    /// The custom fields declared in `[[sign_up.fields]]`, as top-level keys (Better
    /// Auth's `additionalFields`).
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The keys of [`UserView`] a stored custom field may never shadow.
const BUILT_IN: [&str; 9] = [
    "id",
    "name",
    "email",
    "emailVerified",
    "image",
    "createdAt",
    "updatedAt",
    "termsVersion",
    "termsAcceptedAt",
];

impl UserView {
    pub fn of(u: &User) -> UserView {
        let claim = |k: &str| u.claims.get(k).and_then(serde_json::Value::as_str);
        UserView {
            id: u.id.clone(),
            name: claim("name").unwrap_or("").to_string(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            image: claim("picture").map(str::to_string),
            created_at: iso8601(u.created_at),
            updated_at: iso8601(u.updated_at),
            terms_version: u.terms_version.clone(),
            terms_accepted_at: u.terms_accepted_at.map(iso8601),
            fields: u
                .fields
                .iter()
                .filter(|(k, _)| !BUILT_IN.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// Better Auth's `Session`. `id` is our public `sid` (the one in ID tokens).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    /// The session token when the caller presented it (`get-session`); otherwise the
    /// `id` again, a handle `revoke-session` accepts (other devices' credentials are
    /// never shown: only their hashes are stored).
    pub token: String,
    pub user_id: String,
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The browser parsed from `userAgent`.
    pub browser: Option<Named>,
    /// The operating system parsed from `userAgent`.
    pub os: Option<Named>,
    /// The name the user gave this device (`update-session`).
    pub device_name: Option<String>,
    /// The last renewal: accurate to `session.update_age`.
    #[schemars(extend("format" = "date-time"))]
    pub last_active_at: String,
    /// Whether this is the caller's own session.
    pub current: bool,
}

/// A browser or operating system and its version.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Named {
    pub name: String,
    pub version: Option<String>,
}

impl SessionView {
    /// `token` is given for the caller's own session only, which is then `current`.
    pub fn of(s: &Session, token: Option<&str>) -> SessionView {
        let device = user_agent::parse(s.user_agent.as_deref().unwrap_or(""));
        let named = |n: Option<user_agent::Named>| {
            n.map(|n| Named {
                name: n.name.to_string(),
                version: n.version,
            })
        };
        SessionView {
            id: s.sid.clone(),
            token: token.unwrap_or(&s.sid).to_string(),
            user_id: s.user_id.clone(),
            expires_at: iso8601(s.expires_at),
            created_at: iso8601(s.created_at),
            updated_at: iso8601(s.last_seen),
            ip_address: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            browser: named(device.browser),
            os: named(device.os),
            device_name: s.name.clone(),
            last_active_at: iso8601(s.last_seen),
            current: token.is_some(),
        }
    }
}

/// `sign-up/email`: `token` is null unless the user was signed in.
#[derive(Serialize, JsonSchema)]
pub struct SignUpResponse {
    pub token: Option<String>,
    pub user: UserView,
}

/// `sign-in/email`.
#[derive(Serialize, JsonSchema)]
pub struct SignInResponse {
    /// Whether a `callbackURL` was given (then also in `url` and `Location`).
    pub redirect: bool,
    pub token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub user: UserView,
}

/// `get-session` (`null` without a session).
#[derive(Serialize, JsonSchema)]
pub struct SessionResponse {
    pub session: SessionView,
    pub user: UserView,
}

/// `{"status": true}`.
#[derive(Serialize, JsonSchema)]
pub struct StatusResponse {
    pub status: bool,
}

/// `{"success": true}`.
#[derive(Serialize, JsonSchema)]
pub struct SuccessResponse {
    pub success: bool,
}

/// `token` (the jwt plugin): a JWT access token of the core.
#[derive(Serialize, JsonSchema)]
pub struct JwtResponse {
    pub token: String,
}

/// `ok`.
#[derive(Serialize, JsonSchema)]
pub struct OkResponse {
    pub ok: bool,
}

/// `update-user` (documentation of the body `account::update_user` reads field by
/// field, to tell a missing `image` from `image: null`).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct UpdateUserBody {
    name: Option<String>,
    /// A URL, or null to remove the picture.
    image: Option<Option<String>>,
}

/// An RFC 6749 §5.1 token response (`/auth/refresh`).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct OAuthTokenResponse {
    access_token: String,
    token_type: String,
    expires_in: i64,
    refresh_token: Option<String>,
    id_token: Option<String>,
    scope: Option<String>,
}

/// The JWK Set (RFC 7517 §5).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct JwkSet {
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// `list-accounts` (Better Auth's `Account` without secrets).
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct AccountView {
    id: String,
    /// `credential` for the email + password account.
    provider_id: String,
    account_id: String,
    user_id: String,
    scopes: Vec<String>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    #[schemars(extend("format" = "date-time"))]
    updated_at: String,
}

/// `delete-user`: `message` is "User deleted", "Verification email sent" or "User
/// deletion scheduled" (then with `deletionDate`).
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct DeleteUserResponse {
    success: bool,
    message: String,
    #[schemars(extend("format" = "date-time"))]
    deletion_date: Option<String>,
}

/// `update-session` body.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UpdateSessionBody {
    /// The device name (≤ 100 characters; null clears it). `deviceName` is accepted too.
    name: Option<Option<String>>,
}

/// `update-session`.
#[derive(Serialize, JsonSchema)]
pub struct UpdateSessionResponse {
    pub session: SessionView,
}

/// `error`.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct ErrorPageQuery {
    /// An error code (letters, digits, `_-.`; anything else shows as UNKNOWN).
    error: Option<String>,
}

/// `verify-email`: `user` only when a session was started
/// (`email_verification.auto_sign_in_after_verification`).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct VerifyEmailResponse {
    status: bool,
    user: Option<UserView>,
}

/// `{"status": true, "message"}`.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct MessageResponse {
    status: bool,
    message: String,
}

/// `?callbackURL=`.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct CallbackQuery {
    #[serde(rename = "callbackURL")]
    callback_url: Option<String>,
}

/// `/auth/verify-email` body.
#[derive(serde::Deserialize, JsonSchema)]
pub struct TokenBody {
    pub token: String,
}

/// Serialises a view; these types cannot fail to serialise.
pub fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// `security-events`: one page of the user's own security history.
#[derive(Serialize, JsonSchema)]
pub struct SecurityEventsResponse {
    pub events: Vec<SecurityEventView>,
    /// The `before` of the next page; null on the last one.
    pub next: Option<i64>,
}

/// One event of the user's own history (no chain hashes).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEventView {
    /// The event's sequence number (the paging cursor).
    pub id: i64,
    /// The event type, e.g. `user.password_changed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// "Firefox on Linux", parsed from `userAgent`.
    pub device: Option<String>,
    pub client_id: Option<String>,
    /// A readable line: "Signed in — Firefox on Linux — 203.0.113.9 — 2026-12-01 15:20 UTC".
    pub description: String,
    /// Details of the event (never a secret).
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl SecurityEventView {
    pub fn from_row(r: &crate::store::audit::AuditRow) -> SecurityEventView {
        SecurityEventView {
            id: r.seq,
            kind: r.event_type.clone(),
            outcome: r.outcome.clone(),
            time: iso8601(r.at),
            ip_address: r.ip.clone(),
            user_agent: r.user_agent.clone(),
            device: crate::audit::history::device(r),
            client_id: r.client_id.clone(),
            description: crate::audit::history::line(r),
            data: match crate::audit::query::data(r) {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
        }
    }
}

/// `security-events`.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct SecurityEventsQuery {
    /// Page size, 1 to 100 (default 20).
    limit: Option<i64>,
    /// Only events older than this `id` (the previous page's `next`).
    before: Option<i64>,
}
