//! Redirect URI rules: exact matching (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), with the
//! loopback port exception for native clients (RFC 8252 §7.3).

use url::Url;

use crate::store::clients::ClientMetadata;

/// True if `uri` is one of the client's registered redirect URIs.
pub fn is_registered(meta: &ClientMetadata, uri: &str) -> bool {
    if meta.redirect_uris.iter().any(|r| r == uri) {
        return true;
    }
    meta.is_native() && meta.redirect_uris.iter().any(|r| loopback_matches(r, uri))
}

fn is_loopback_ip(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// RFC 8252 §7.3: for `http` loopback IP literals the port may vary at request time; all
/// else must match.
fn loopback_matches(registered: &str, requested: &str) -> bool {
    let (Ok(r), Ok(q)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    r.scheme() == "http"
        && q.scheme() == "http"
        && is_loopback_ip(&r)
        && r.host() == q.host()
        && r.path() == q.path()
        && r.query() == q.query()
        && q.fragment().is_none()
        && q.username().is_empty()
        && q.password().is_none()
}

#[derive(Debug, PartialEq, Eq)]
pub enum UriProblem {
    NotAbsolute,
    Fragment,
    NotHttps,
    BadScheme,
}

impl UriProblem {
    pub fn describe(&self, uri: &str) -> String {
        match self {
            UriProblem::NotAbsolute => format!("`{uri}` is not an absolute URI"),
            UriProblem::Fragment => {
                format!("`{uri}` must not contain a fragment (RFC 6749 §3.1.2)")
            }
            UriProblem::NotHttps => {
                format!("`{uri}` must use https (http is allowed only for loopback addresses)")
            }
            UriProblem::BadScheme => {
                format!("`{uri}` uses a scheme that cannot be a redirect target")
            }
        }
    }
}

/// Registration-time rules for a redirect URI (RFC 6749 §3.1.2, RFC 8252 §7,
/// OIDC Registration §2 `redirect_uris`).
pub fn check_registrable(uri: &str, native: bool) -> Result<(), UriProblem> {
    let u = Url::parse(uri).map_err(|_| UriProblem::NotAbsolute)?;
    if u.fragment().is_some() || uri.contains('#') {
        return Err(UriProblem::Fragment);
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback_url(&u) => Ok(()),
        "http" => Err(UriProblem::NotHttps),
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" => {
            Err(UriProblem::BadScheme)
        }
        // Private-use URI schemes are for native apps only (RFC 8252 §7.1).
        _ if native => Ok(()),
        _ => Err(UriProblem::NotHttps),
    }
}
