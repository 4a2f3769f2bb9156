//! The OpenAPI 3.1 document of `/api/auth/*` and `/auth/*`, served at
//! `/api/auth/openapi.json` for the Kotlin and Swift client generators.
//!
//! Routes are registered through [`Routes`], which adds each handler to the axum router
//! and records its [`Doc`] at the same time, so a route cannot exist without its entry.
//! Schemas come from the handlers' own types (`schemars::JsonSchema` on the request
//! bodies and the response views of `views.rs`); OpenAPI 3.1 uses JSON Schema 2020-12
//! as is (OpenAPI 3.1 §4.8.24), so the schemas go into `components/schemas` unchanged.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::app::State;

/// An HTTP method of a documented route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Whether a route needs a session (cookie or `Authorization: Bearer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Optional,
    Required,
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What the document says about one route.
#[derive(Clone)]
pub struct Doc {
    pub summary: &'static str,
    pub tag: &'static str,
    body: Option<SchemaFn>,
    query: Option<SchemaFn>,
    ok: Option<SchemaFn>,
    /// The success status and what it carries when it is not JSON (a redirect, a page).
    ok_status: u16,
    ok_description: &'static str,
    pub auth: Auth,
    /// The error codes this route answers with, beyond validation errors.
    errors: &'static [&'static str],
    /// Answers in the OAuth 2.0 error format (RFC 6749 §5.2) rather than `{code, message}`.
    oauth_errors: bool,
}

impl Doc {
    pub fn new(tag: &'static str, summary: &'static str) -> Doc {
        Doc {
            summary,
            tag,
            body: None,
            query: None,
            ok: None,
            ok_status: 200,
            ok_description: "OK",
            auth: Auth::None,
            errors: &[],
            oauth_errors: false,
        }
    }
    /// The JSON request body.
    pub fn body<T: JsonSchema>(mut self) -> Doc {
        self.body = Some(schema_of::<T>);
        self
    }
    /// The query parameters, as the properties of `T`.
    pub fn query<T: JsonSchema>(mut self) -> Doc {
        self.query = Some(schema_of::<T>);
        self
    }
    /// The JSON body of a 200 answer.
    pub fn ok<T: JsonSchema>(mut self) -> Doc {
        self.ok = Some(schema_of::<T>);
        self
    }
    /// A non-JSON success (e.g. `302` "redirect to callbackURL", `200` an HTML page).
    pub fn answers(mut self, status: u16, description: &'static str) -> Doc {
        self.ok_status = status;
        self.ok_description = description;
        self
    }
    pub fn session(mut self, auth: Auth) -> Doc {
        self.auth = auth;
        self
    }
    pub fn errors(mut self, codes: &'static [&'static str]) -> Doc {
        self.errors = codes;
        self
    }
    pub fn oauth_errors(mut self) -> Doc {
        self.oauth_errors = true;
        self
    }
}

/// One documented route.
#[derive(Clone)]
pub struct Operation {
    pub verb: Verb,
    pub path: &'static str,
    pub doc: Doc,
}

/// An axum router that documents every route it is given.
pub struct Routes {
    pub router: Router<State>,
    pub operations: Vec<Operation>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            operations: Vec::new(),
        }
    }
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    pub fn add<H, T>(mut self, verb: Verb, path: &'static str, handler: H, doc: Doc) -> Routes
    where
        H: Handler<T, State>,
        T: 'static,
    {
        self.router = self.router.route(path, on(verb.filter(), handler));
        self.operations.push(Operation { verb, path, doc });
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.operations.extend(other.operations);
        self
    }
}

/// The error body of every `/api/auth` error (`error.rs`).
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// SCREAMING_SNAKE_CASE, e.g. `INVALID_EMAIL_OR_PASSWORD`.
    code: String,
    message: String,
}

/// RFC 6749 §5.2.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct OAuthErrorBody {
    error: String,
    error_description: Option<String>,
}

/// `{name}` segments of a path, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn query_parameters(g: &mut SchemaGenerator, f: SchemaFn) -> Vec<Value> {
    let s = f(g);
    // A `$ref` to components: look the definition up to list its properties.
    let resolved = match s.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|name| g.definitions().get(name).cloned())
            .unwrap_or(Value::Null),
        None => s.to_value(),
    };
    let required: Vec<&str> = resolved["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    resolved["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, schema)| {
                    json!({
                        "name": name,
                        "in": "query",
                        "required": required.contains(&name.as_str()),
                        "schema": schema,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn operation_id(op: &Operation) -> String {
    let mut id = op.verb.as_str().to_string();
    for part in op.path.split(['/', '-', '{', '}']) {
        let mut c = part.chars();
        if let Some(f) = c.next() {
            id.push(f.to_ascii_uppercase());
            id.extend(c);
        }
    }
    id
}

fn operation(g: &mut SchemaGenerator, op: &Operation) -> Value {
    let d = &op.doc;
    let mut params: Vec<Value> = path_params(op.path)
        .into_iter()
        .map(|n| json!({ "name": n, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if let Some(q) = d.query {
        params.extend(query_parameters(g, q));
    }
    let mut o = json!({
        "operationId": operation_id(op),
        "summary": d.summary,
        "tags": [d.tag],
    });
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if let Some(b) = d.body {
        o["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": b(g) } },
        });
    }
    let mut responses = Map::new();
    let mut ok = json!({ "description": d.ok_description });
    if let Some(s) = d.ok {
        ok["content"] = json!({ "application/json": { "schema": s(g) } });
    }
    if d.ok_status == 200 && d.ok.is_some() {
        ok["headers"] = json!({
            "set-auth-token": {
                "description": "The session token, when the request created a session (bearer mode).",
                "schema": { "type": "string" },
            }
        });
    }
    responses.insert(d.ok_status.to_string(), ok);
    let err_schema = if d.oauth_errors {
        g.subschema_for::<OAuthErrorBody>()
    } else {
        g.subschema_for::<ErrorBody>()
    };
    let mut desc = String::from("An error");
    if !d.errors.is_empty() {
        desc.push_str(": ");
        desc.push_str(&d.errors.join(", "));
    }
    responses.insert(
        "4XX".into(),
        json!({ "description": desc, "content": { "application/json": { "schema": err_schema } } }),
    );
    o["responses"] = Value::Object(responses);
    match d.auth {
        Auth::None => {}
        Auth::Optional => o["security"] = json!([{}, { "bearer": [] }, { "cookie": [] }]),
        Auth::Required => o["security"] = json!([{ "bearer": [] }, { "cookie": [] }]),
    }
    o
}

/// The document for `operations`, with `server` (the issuer) as its base URL and
/// `cookie` the session cookie's name.
pub fn document(operations: &[Operation], server: &str, cookie: &str) -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for op in operations {
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.verb.as_str()] = operation(&mut g, op);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "klard-auth account API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Better-Auth-compatible /api/auth endpoints and their /auth REST aliases.",
        },
        "servers": [{ "url": server }],
        "paths": paths,
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "The session token (set-auth-token)." },
                "cookie": { "type": "apiKey", "in": "cookie", "name": cookie },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_and_path_params() {
        let op = Operation {
            verb: Verb::Delete,
            path: "/auth/sessions/{id}",
            doc: Doc::new("t", "s"),
        };
        assert_eq!(operation_id(&op), "deleteAuthSessionsId");
        assert_eq!(path_params(op.path), ["id"]);
        let op = Operation {
            verb: Verb::Post,
            path: "/api/auth/sign-in/email",
            doc: Doc::new("t", "s"),
        };
        assert_eq!(operation_id(&op), "postApiAuthSignInEmail");
    }
}
