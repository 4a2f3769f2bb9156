//! Mail templates (askama, templates/mail/): each kind has an HTML and a plain-text
//! version per locale (`en`, `de`). Branding comes from `mail.branding`.

use askama::Template;

use super::Message;
use crate::config::BrandingConfig;

/// The locales mail is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    En,
    De,
}

impl Locale {
    /// Picks a locale from a BCP 47 tag or an Accept-Language value (`de`, `de-DE`,
    /// `de_AT`, `de-DE,de;q=0.9`); anything unknown is English.
    pub fn negotiate(tag: &str) -> Locale {
        let first = tag.split([',', ';']).next().unwrap_or("");
        let primary = first.split(['-', '_']).next().unwrap_or("").trim();
        if primary.eq_ignore_ascii_case("de") {
            Locale::De
        } else {
            Locale::En
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
        }
    }
}

#[derive(Template)]
#[template(path = "mail/verify_email.en.html")]
struct VerifyEmailEnHtml<'a> {
    b: &'a BrandingConfig,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_email.en.txt")]
struct VerifyEmailEnText<'a> {
    b: &'a BrandingConfig,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_email.de.html")]
struct VerifyEmailDeHtml<'a> {
    b: &'a BrandingConfig,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_email.de.txt")]
struct VerifyEmailDeText<'a> {
    b: &'a BrandingConfig,
    link: &'a str,
}

/// "Confirm your email address": `link` is the verification URL.
pub fn verify_email(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    link: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let (subject, html, text) = match loc {
        Locale::En => (
            format!("Confirm your email address for {}", b.product_name),
            VerifyEmailEnHtml { b, link }.render()?,
            VerifyEmailEnText { b, link }.render()?,
        ),
        Locale::De => (
            format!("Bestätigen Sie Ihre E-Mail-Adresse für {}", b.product_name),
            VerifyEmailDeHtml { b, link }.render()?,
            VerifyEmailDeText { b, link }.render()?,
        ),
    };
    Ok(Message {
        to: to.to_string(),
        subject,
        html,
        text,
        locale: loc.as_str().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_locales() {
        assert_eq!(Locale::negotiate("de"), Locale::De);
        assert_eq!(Locale::negotiate("de-DE"), Locale::De);
        assert_eq!(Locale::negotiate("DE_at"), Locale::De);
        assert_eq!(Locale::negotiate("de-DE,de;q=0.9,en;q=0.8"), Locale::De);
        assert_eq!(Locale::negotiate("en-US"), Locale::En);
        assert_eq!(Locale::negotiate("fr"), Locale::En);
        assert_eq!(Locale::negotiate(""), Locale::En);
    }

    #[test]
    fn html_escapes_and_text_does_not() {
        let b = BrandingConfig {
            product_name: "A&B".into(),
            ..BrandingConfig::default()
        };
        let link = "https://auth.example.com/verify?token=abc&x=1";
        let m = verify_email(&b, "x@example.com", "en", link).expect("render");
        assert!(m.html.contains("A&#38;B"), "{}", m.html);
        assert!(m.html.contains("token=abc&#38;x=1"), "{}", m.html);
        assert!(m.text.contains(link), "{}", m.text);
        assert!(m.text.contains("A&B account"), "{}", m.text);
        assert_eq!(m.subject, "Confirm your email address for A&B");
        assert_eq!(m.locale, "en");
    }
}
