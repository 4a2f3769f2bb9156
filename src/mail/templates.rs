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
    Ok(message(to, loc, subject, html, text))
}

/// The locale of a mail to a user: their `locale` claim if set, else the request's
/// `Accept-Language`, else English.
pub fn locale_for(
    claims: &serde_json::Map<String, serde_json::Value>,
    headers: &axum::http::HeaderMap,
) -> Locale {
    if let Some(l) = claims
        .get("locale")
        .and_then(serde_json::Value::as_str)
        .filter(|l| !l.trim().is_empty())
    {
        return Locale::negotiate(l);
    }
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Locale::negotiate)
        .unwrap_or(Locale::En)
}

/// Declares the askama structs of one mail kind: HTML and text, English and German.
macro_rules! mail_templates {
    ($($name:ident => $path:literal { $($field:ident: $ty:ty),* })*) => {
        $(
            #[derive(Template)]
            #[template(path = $path)]
            struct $name<'a> {
                b: &'a BrandingConfig,
                $($field: $ty),*
            }
        )*
    };
}

mail_templates! {
    ResetEnHtml => "mail/reset_password.en.html" { link: &'a str, minutes: i64 }
    ResetEnText => "mail/reset_password.en.txt" { link: &'a str, minutes: i64 }
    ResetDeHtml => "mail/reset_password.de.html" { link: &'a str, minutes: i64 }
    ResetDeText => "mail/reset_password.de.txt" { link: &'a str, minutes: i64 }
    ChangedEnHtml => "mail/password_changed.en.html" { email: &'a str, link: &'a str }
    ChangedEnText => "mail/password_changed.en.txt" { email: &'a str, link: &'a str }
    ChangedDeHtml => "mail/password_changed.de.html" { email: &'a str, link: &'a str }
    ChangedDeText => "mail/password_changed.de.txt" { email: &'a str, link: &'a str }
}

/// "Reset your password": `link` opens the reset form; it is valid `ttl` seconds.
pub fn reset_password(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    link: &str,
    ttl: i64,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let minutes = (ttl + 59) / 60;
    let (subject, html, text) = match loc {
        Locale::En => (
            format!("Reset your {} password", b.product_name),
            ResetEnHtml { b, link, minutes }.render()?,
            ResetEnText { b, link, minutes }.render()?,
        ),
        Locale::De => (
            format!("Setzen Sie Ihr {}-Passwort zurück", b.product_name),
            ResetDeHtml { b, link, minutes }.render()?,
            ResetDeText { b, link, minutes }.render()?,
        ),
    };
    Ok(message(to, loc, subject, html, text))
}

/// "Your password was changed" (issue 3: the user is told by mail): sent after every
/// password change, by reset or by change-password. `link` is where a new reset can be
/// asked for, should the change not have been the user's.
pub fn password_changed(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    link: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let email = to;
    let (subject, html, text) = match loc {
        Locale::En => (
            format!("Your {} password was changed", b.product_name),
            ChangedEnHtml { b, email, link }.render()?,
            ChangedEnText { b, email, link }.render()?,
        ),
        Locale::De => (
            format!("Ihr {}-Passwort wurde geändert", b.product_name),
            ChangedDeHtml { b, email, link }.render()?,
            ChangedDeText { b, email, link }.render()?,
        ),
    };
    Ok(message(to, loc, subject, html, text))
}

/// The rendered parts of a mail as a [`Message`] for the outbox.
pub(crate) fn message(
    to: &str,
    loc: Locale,
    subject: String,
    html: String,
    text: String,
) -> Message {
    Message {
        to: to.to_string(),
        subject,
        html,
        text,
        locale: loc.as_str().to_string(),
    }
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

    #[test]
    fn reset_mail_in_both_locales() {
        let b = BrandingConfig {
            support_email: Some("help@example.com".into()),
            ..BrandingConfig::default()
        };
        let link = "https://auth.example.com/api/auth/reset-password/t0k?callbackURL=%2Fr&a=1";
        let en = reset_password(&b, "x@example.com", "en-GB", link, 3600).expect("render");
        assert_eq!(en.subject, "Reset your Klard password");
        assert_eq!(en.locale, "en");
        assert!(en.text.contains(link), "{}", en.text);
        assert!(en.text.contains("expires in 60 minutes"), "{}", en.text);
        assert!(en.text.contains("help@example.com"), "{}", en.text);
        assert!(en.html.contains("callbackURL=%2Fr&#38;a=1"), "{}", en.html);
        assert!(en.html.contains("<html lang=\"en\">"), "{}", en.html);
        let de = reset_password(&b, "x@example.com", "de-AT,de;q=0.9", link, 1800).expect("render");
        assert_eq!(de.subject, "Setzen Sie Ihr Klard-Passwort zurück");
        assert_eq!(de.locale, "de");
        assert!(de.text.contains("läuft in 30 Minuten ab"), "{}", de.text);
        assert!(de.html.contains("Neues Passwort wählen"), "{}", de.html);
        assert!(de.html.contains("<html lang=\"de\">"), "{}", de.html);
    }

    #[test]
    fn password_changed_mail_names_the_account() {
        let b = BrandingConfig {
            product_name: "Acme <Auth>".into(),
            ..BrandingConfig::default()
        };
        let link = "https://auth.example.com/forgot-password";
        let en = password_changed(&b, "o'brien@example.com", "fr", link).expect("render");
        assert_eq!(en.locale, "en");
        assert_eq!(en.subject, "Your Acme <Auth> password was changed");
        assert!(
            en.text.contains("(o'brien@example.com) was just changed"),
            "{}",
            en.text
        );
        assert!(en.text.contains(link), "{}", en.text);
        assert!(en.html.contains("Acme &#60;Auth&#62;"), "{}", en.html);
        assert!(!en.html.contains("<Auth>"), "{}", en.html);
        assert!(!en.text.contains("contact us"), "{}", en.text);
        let de = password_changed(&b, "x@example.com", "de", link).expect("render");
        assert_eq!(de.subject, "Ihr Acme <Auth>-Passwort wurde geändert");
        assert!(de.text.contains("wurde soeben geändert"), "{}", de.text);
    }
}
