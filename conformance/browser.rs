//! A minimal "browser": one cookie jar, manual redirect following, and
//! automatic filling of the OP's login and consent forms.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, header};
use url::Url;

use crate::html;

/// How an authorization-style navigation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A `Location` pointing outside the OP (the redirect URI, a bad URI, or any
    /// foreign origin). Never fetched.
    Redirect(Url),
    /// A page the browser stopped at (error page, logged-out page, JSON, ...).
    Page(Page),
}

#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub url: Url,
}

impl Page {
    pub fn is_html(&self) -> bool {
        self.content_type
            .to_ascii_lowercase()
            .starts_with("text/html")
    }

    pub fn summary(&self) -> String {
        let text = html::text(&self.body);
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let short: String = text.chars().take(160).collect();
        format!(
            "HTTP {} {} at {}: \"{}\"",
            self.status, self.content_type, self.url, short
        )
    }
}

#[derive(Debug, Clone)]
pub struct NavResult {
    pub outcome: Outcome,
    /// Login pages answered during this navigation.
    pub logins: u32,
    /// Consent pages answered during this navigation.
    pub consents: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct NavOpts {
    /// If false, a login page is an error (e.g. prompt=none).
    pub allow_login: bool,
    /// If false, a consent page is an error (e.g. prompt=none).
    pub allow_consent: bool,
    /// The value sent for the consent page's `decision` button.
    pub decision: &'static str,
}

impl NavOpts {
    /// prompt=none: the OP must not show any page.
    pub fn no_ui() -> Self {
        NavOpts {
            allow_login: false,
            allow_consent: false,
            decision: "allow",
        }
    }
}

impl Default for NavOpts {
    fn default() -> Self {
        NavOpts {
            allow_login: true,
            allow_consent: true,
            decision: "allow",
        }
    }
}

pub struct Browser {
    http: reqwest::Client,
    /// Cookies by name (single server, so domain/path are ignored; Secure cookies
    /// are sent over http://127.0.0.1 as browsers do for localhost).
    jar: BTreeMap<String, String>,
    /// Origins ("scheme://host:port") the browser is willing to fetch.
    origins: Vec<String>,
    username: String,
    password: String,
    /// What the browser did, for --verbose diagnostics.
    pub trace: Vec<String>,
}

pub fn origin(u: &Url) -> String {
    u.origin().ascii_serialization()
}

impl Browser {
    pub fn new(
        http: reqwest::Client,
        origins: Vec<String>,
        username: &str,
        password: &str,
    ) -> Self {
        Browser {
            http,
            jar: BTreeMap::new(),
            origins,
            username: username.to_string(),
            password: password.to_string(),
            trace: Vec::new(),
        }
    }

    fn cookie_header(&self) -> Option<String> {
        if self.jar.is_empty() {
            return None;
        }
        Some(
            self.jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn store_cookies(&mut self, headers: &header::HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            let mut parts = s.split(';');
            let Some(nv) = parts.next() else { continue };
            let Some((name, value)) = nv.split_once('=') else {
                continue;
            };
            let name = name.trim().to_string();
            let value = value.trim().to_string();
            if name.is_empty() {
                continue;
            }
            let mut expired = false;
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim();
                if k == "max-age" && v.parse::<i64>().map(|n| n <= 0).unwrap_or(false) {
                    expired = true;
                }
                if k == "expires" && (v.contains("1970") || v.contains("1969")) {
                    expired = true;
                }
            }
            if expired {
                self.jar.remove(&name);
            } else {
                self.jar.insert(name, value);
            }
        }
    }

    /// One HTTP request with the jar's cookies; stores the response's cookies.
    pub async fn request(
        &mut self,
        method: Method,
        url: &Url,
        form: Option<&[(String, String)]>,
    ) -> Result<reqwest::Response> {
        let mut rb = self
            .http
            .request(method.clone(), url.clone())
            .header(
                header::ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .header(header::ACCEPT_LANGUAGE, "en");
        if let Some(c) = self.cookie_header() {
            rb = rb.header(header::COOKIE, c);
        }
        if let Some(f) = form {
            rb = rb.form(f);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("{method} {url} failed"))?;
        self.trace
            .push(format!("{method} {url} -> {}", resp.status().as_u16()));
        self.store_cookies(resp.headers());
        Ok(resp)
    }

    /// Navigates like a browser: follows redirects within the OP, fills login and
    /// consent forms, and stops at the first Location leaving the OP or at a page
    /// that is neither a login nor a consent page.
    pub async fn navigate(
        &mut self,
        method: Method,
        url: Url,
        form: Option<Vec<(String, String)>>,
        opts: NavOpts,
    ) -> Result<NavResult> {
        let mut method = method;
        let mut url = url;
        let mut form = form;
        let mut logins = 0u32;
        let mut consents = 0u32;
        let mut just_logged_in = false;
        for _ in 0..40 {
            if !self.origins.contains(&origin(&url)) {
                return Ok(NavResult {
                    outcome: Outcome::Redirect(url),
                    logins,
                    consents,
                });
            }
            let resp = self.request(method.clone(), &url, form.as_deref()).await?;
            let status = resp.status().as_u16();
            if (300..400).contains(&status) {
                let loc = resp
                    .headers()
                    .get(header::LOCATION)
                    .ok_or_else(|| anyhow!("HTTP {status} from {url} without Location"))?
                    .to_str()
                    .map_err(|_| anyhow!("non-ASCII Location header from {url}"))?
                    .to_string();
                let next = url
                    .join(&loc)
                    .with_context(|| format!("bad Location {loc:?} from {url}"))?;
                if let Some(last) = self.trace.last_mut() {
                    last.push_str(&format!(" Location: {next}"));
                }
                if !self.origins.contains(&origin(&next)) {
                    return Ok(NavResult {
                        outcome: Outcome::Redirect(next),
                        logins,
                        consents,
                    });
                }
                if !matches!(status, 307 | 308) {
                    method = Method::GET;
                    form = None;
                }
                url = next;
                continue;
            }
            let content_type = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = resp
                .text()
                .await
                .with_context(|| format!("reading body of {url}"))?;
            let page = Page {
                status,
                content_type,
                body,
                url: url.clone(),
            };
            if status != 200 || !page.is_html() {
                return Ok(NavResult {
                    outcome: Outcome::Page(page),
                    logins,
                    consents,
                });
            }
            let forms = html::forms(&page.body);
            if let Some(f) = forms.iter().find(|f| f.is_login()) {
                if !opts.allow_login {
                    bail!(
                        "the OP showed a login page where none is allowed ({})",
                        page.url
                    );
                }
                if just_logged_in {
                    bail!(
                        "login page shown again right after submitting the credentials (wrong credentials?): {}",
                        page.summary()
                    );
                }
                let (m, u, params) = self.fill_login(f, &url)?;
                logins += 1;
                just_logged_in = true;
                (method, url, form) = route(m, u, params)?;
                continue;
            }
            just_logged_in = false;
            if let Some(f) = forms.iter().find(|f| {
                f.is_consent()
                    && f.submit_controls()
                        .iter()
                        .any(|b| b.get("value") == Some(opts.decision))
            }) {
                if !opts.allow_consent {
                    bail!(
                        "the OP showed a consent page where no UI is allowed ({})",
                        page.url
                    );
                }
                if consents >= 3 {
                    bail!("consent page shown over and over ({})", page.url);
                }
                let (m, u, params) = fill_consent(f, &url, opts.decision)?;
                consents += 1;
                (method, url, form) = route(m, u, params)?;
                continue;
            }
            return Ok(NavResult {
                outcome: Outcome::Page(page),
                logins,
                consents,
            });
        }
        bail!("more than 40 navigation steps without reaching the client (redirect loop?)")
    }

    fn fill_login(&self, f: &html::Form, base: &Url) -> Result<Submission> {
        let mut params = Vec::new();
        let has_username = f.input("username").is_some();
        let mut user_filled = false;
        for i in &f.inputs {
            let Some(name) = i.get("name") else { continue };
            let value = i.get("value").unwrap_or("");
            match i.kind("text").as_str() {
                "hidden" => params.push((name.to_string(), value.to_string())),
                "password" => params.push((name.to_string(), self.password.clone())),
                "submit" | "image" | "button" | "reset" | "file" => {}
                "checkbox" | "radio" => {
                    if i.has("checked") {
                        params.push((name.to_string(), i.get("value").unwrap_or("on").to_string()));
                    }
                }
                _ => {
                    if name == "username" || (!has_username && !user_filled) {
                        params.push((name.to_string(), self.username.clone()));
                        user_filled = true;
                    } else {
                        params.push((name.to_string(), value.to_string()));
                    }
                }
            }
        }
        // Click the first named submit control, as a browser would.
        if let Some(b) = f.submit_controls().into_iter().find(|b| b.has("name")) {
            params.push((
                b.get("name").unwrap_or_default().to_string(),
                b.get("value").unwrap_or_default().to_string(),
            ));
        }
        let action = form_action(f, base)?;
        Ok((f.method.clone(), action, params))
    }
}

fn fill_consent(f: &html::Form, base: &Url, decision: &str) -> Result<Submission> {
    let mut params: Vec<(String, String)> = f
        .inputs
        .iter()
        .filter(|i| i.kind("text") == "hidden")
        .filter_map(|i| {
            i.get("name")
                .map(|n| (n.to_string(), i.get("value").unwrap_or("").to_string()))
        })
        .collect();
    params.push(("decision".to_string(), decision.to_string()));
    let action = form_action(f, base)?;
    Ok((f.method.clone(), action, params))
}

fn form_action(f: &html::Form, base: &Url) -> Result<Url> {
    match f.action.as_deref() {
        None | Some("") => Ok(base.clone()),
        Some(a) => base
            .join(a)
            .with_context(|| format!("bad form action {a:?} on {base}")),
    }
}

type Step = (Method, Url, Option<Vec<(String, String)>>);

/// A form to submit: method, action URL, fields.
type Submission = (String, Url, Vec<(String, String)>);

fn route(method: String, mut url: Url, params: Vec<(String, String)>) -> Result<Step> {
    if method == "post" {
        Ok((Method::POST, url, Some(params)))
    } else if method == "get" {
        url.query_pairs_mut().clear().extend_pairs(params.iter());
        Ok((Method::GET, url, None))
    } else {
        bail!("form with unsupported method {method:?}")
    }
}

/// Query (or fragment) parameters of a URL as a list.
pub fn params_of(s: Option<&str>) -> Vec<(String, String)> {
    match s {
        None => Vec::new(),
        Some(q) => url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    }
}
