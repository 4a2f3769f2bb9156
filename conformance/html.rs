//! A tiny, forgiving HTML scanner: just enough to find forms, their inputs and
//! buttons on the OP's login and consent pages. No DOM, no scripts.

/// One start tag with its attributes (names lower-cased, values unescaped).
#[derive(Debug, Clone, Default)]
pub struct Tag {
    pub attrs: Vec<(String, String)>,
}

impl Tag {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(n, _)| n == name)
    }

    /// The `type` attribute, lower-cased, with the HTML default.
    pub fn kind(&self, default: &str) -> String {
        self.get("type").unwrap_or(default).to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Form {
    pub action: Option<String>,
    pub method: String,
    pub inputs: Vec<Tag>,
    pub buttons: Vec<Tag>,
}

impl Form {
    pub fn input(&self, name: &str) -> Option<&Tag> {
        self.inputs.iter().find(|t| t.get("name") == Some(name))
    }

    /// Submit controls: `<button>` (default type submit) and `<input type=submit|image>`.
    pub fn submit_controls(&self) -> Vec<&Tag> {
        let mut v: Vec<&Tag> = self
            .buttons
            .iter()
            .filter(|b| b.kind("submit") == "submit")
            .collect();
        v.extend(
            self.inputs
                .iter()
                .filter(|i| matches!(i.kind("text").as_str(), "submit" | "image")),
        );
        v
    }

    pub fn is_login(&self) -> bool {
        self.input("password").is_some() || self.inputs.iter().any(|i| i.kind("text") == "password")
    }

    pub fn is_consent(&self) -> bool {
        self.submit_controls()
            .iter()
            .any(|b| b.get("name") == Some("decision"))
    }
}

/// Finds the next `<name` start tag at or after `from` in the lower-cased text.
fn find_tag(lower: &str, name: &str, from: usize) -> Option<usize> {
    let pat = format!("<{name}");
    let mut pos = from;
    while pos <= lower.len() {
        let i = pos + lower.get(pos..)?.find(&pat)?;
        let after = lower.as_bytes().get(i + pat.len()).copied();
        match after {
            Some(c) if c.is_ascii_whitespace() || c == b'>' || c == b'/' => return Some(i),
            None => return None,
            _ => pos = i + pat.len(),
        }
    }
    None
}

/// Parses the attributes of the tag whose `<` is at `start`; returns the tag and
/// the index just past its closing `>`.
fn parse_tag(html: &str, start: usize) -> (Tag, usize) {
    let b = html.as_bytes();
    let mut i = start + 1;
    // Skip the tag name.
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    let mut tag = Tag::default();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (tag, b.len());
        }
        if b[i] == b'>' {
            return (tag, i + 1);
        }
        let ns = i;
        while i < b.len()
            && !b[i].is_ascii_whitespace()
            && b[i] != b'='
            && b[i] != b'>'
            && b[i] != b'/'
        {
            i += 1;
        }
        let name = html[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = unescape(&html[vs..i.min(b.len())]);
                i = (i + 1).min(b.len());
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = unescape(&html[vs..i]);
            }
        }
        if !name.is_empty() {
            tag.attrs.push((name, value));
        }
    }
}

fn tags_in(html: &str, lower: &str, name: &str, from: usize, to: usize) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut pos = from;
    while let Some(i) = find_tag(lower, name, pos) {
        if i >= to {
            break;
        }
        let (tag, end) = parse_tag(html, i);
        out.push(tag);
        pos = end.max(i + 1);
    }
    out
}

/// All forms of the document, in order.
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = find_tag(&lower, "form", pos) {
        let (tag, body_start) = parse_tag(html, i);
        let close = lower
            .get(body_start..)
            .and_then(|s| s.find("</form"))
            .map(|x| body_start + x);
        let next_form = find_tag(&lower, "form", body_start);
        let end = match (close, next_form) {
            (Some(c), Some(n)) => c.min(n),
            (Some(c), None) => c,
            (None, Some(n)) => n,
            (None, None) => html.len(),
        };
        out.push(Form {
            action: tag.get("action").map(str::to_string),
            method: tag.get("method").unwrap_or("get").to_ascii_lowercase(),
            inputs: tags_in(html, &lower, "input", body_start, end),
            buttons: tags_in(html, &lower, "button", body_start, end),
        });
        pos = end.max(i + 1);
    }
    out
}

/// Decodes the character references that templates commonly emit.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let semi = rest.find(';').filter(|&j| j <= 12);
        let decoded = semi.and_then(|j| {
            let ent = &rest[1..j];
            let ch = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    if let Some(hex) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                    } else if let Some(dec) = ent.strip_prefix('#') {
                        dec.parse::<u32>().ok().and_then(char::from_u32)
                    } else {
                        None
                    }
                }
            };
            ch.map(|c| (c, j))
        });
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &rest[j + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Visible-ish text of a page (tags stripped), for error-text assertions.
pub fn text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_and_consent_forms() {
        let page = r#"<html><body><FORM method="POST" action="/login?x=1&amp;y=2">
            <input type=hidden name="csrf" value="a&quot;b">
            <input name='interaction' type='hidden' value='xyz'/>
            <input name="username" type="email" autofocus>
            <input name="password" type="password">
            <button class="login-submit">Sign in</button></form>
            <form method="post" action="consent"><input type="hidden" name="t" value="1">
            <button type="submit" name="decision" value="allow">Allow</button>
            <button type="submit" name="decision" value="deny">Deny</button></form></body></html>"#;
        let f = forms(page);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].action.as_deref(), Some("/login?x=1&y=2"));
        assert_eq!(f[0].method, "post");
        assert!(f[0].is_login());
        assert!(!f[0].is_consent());
        assert_eq!(
            f[0].input("csrf").and_then(|t| t.get("value")),
            Some("a\"b")
        );
        assert_eq!(
            f[0].input("interaction").and_then(|t| t.get("value")),
            Some("xyz")
        );
        assert!(f[1].is_consent());
        assert_eq!(f[1].buttons.len(), 2);
        assert_eq!(unescape("&#x27;&#39;&lt;&unknown;"), "''<&unknown;");
    }
}
