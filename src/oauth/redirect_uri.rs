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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(native: bool, uris: &[&str]) -> ClientMetadata {
        ClientMetadata {
            application_type: if native { "native" } else { "web" }.into(),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn exact_match_only() {
        let m = meta(false, &["https://app.example.com/cb"]);
        assert!(is_registered(&m, "https://app.example.com/cb"));
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://APP.example.com/cb",
            "https://app.example.com/cb#f",
        ] {
            assert!(!is_registered(&m, bad), "{bad}");
        }
    }

    #[test]
    fn rfc8252_loopback_port_varies_for_native_only() {
        let native = meta(true, &["http://127.0.0.1/cb", "http://[::1]:5000/cb"]);
        assert!(is_registered(&native, "http://127.0.0.1:51234/cb"));
        assert!(is_registered(&native, "http://[::1]:6000/cb"));
        assert!(!is_registered(&native, "http://127.0.0.1:51234/other"));
        assert!(
            !is_registered(&native, "http://localhost:51234/cb"),
            "RFC 8252 §7.3: IP literals only"
        );
        let web = meta(false, &["http://127.0.0.1:3000/cb"]);
        assert!(!is_registered(&web, "http://127.0.0.1:3001/cb"));
    }

    #[test]
    fn registrable_uris() {
        assert_eq!(
            check_registrable("https://a.example.com/cb#x", false),
            Err(UriProblem::Fragment)
        );
        assert_eq!(
            check_registrable("http://a.example.com/cb", false),
            Err(UriProblem::NotHttps)
        );
        assert!(check_registrable("http://127.0.0.1:8080/cb", false).is_ok());
        assert_eq!(
            check_registrable("klard://callback", false),
            Err(UriProblem::NotHttps)
        );
        assert!(check_registrable("klard://callback", true).is_ok());
        assert!(check_registrable("com.klard.app:/oauth", true).is_ok());
        assert_eq!(
            check_registrable("javascript:alert(1)", true),
            Err(UriProblem::BadScheme)
        );
        assert_eq!(
            check_registrable("/relative", true),
            Err(UriProblem::NotAbsolute)
        );
    }
}
