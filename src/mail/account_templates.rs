//! The mail of the account lifecycle (issue 3): confirming a new address, the notice to
//! the old one with its revert link, confirming and announcing an account deletion.
//! Every message is HTML and plain text (templates/mail/account.{html,txt}, on
//! templates/mail/layout.html) in English or German; the wording lives here, one
//! function per message, so the two locales of a message sit side by side.

use askama::Template;

use super::Message;
use super::templates::Locale;
use crate::config::BrandingConfig;

/// The words of one message in one locale.
struct Copy {
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    /// The call to action, if the message has a link.
    link: Option<String>,
    button: String,
    link_hint: String,
    footer: String,
    support: String,
}

#[derive(Template)]
#[template(path = "mail/account.html")]
struct Html<'a> {
    b: &'a BrandingConfig,
    lang: &'a str,
    c: &'a Copy,
}

#[derive(Template)]
#[template(path = "mail/account.txt")]
struct Text<'a> {
    b: &'a BrandingConfig,
    c: &'a Copy,
}

impl Copy {
    fn new(loc: Locale, subject: String, heading: &str, paragraphs: Vec<String>) -> Copy {
        let (link_hint, support) = match loc {
            Locale::En => (
                "If the button does not work, open this link:",
                "Questions? Write to",
            ),
            Locale::De => (
                "Falls die Schaltfläche nicht funktioniert, öffnen Sie diesen Link:",
                "Fragen? Schreiben Sie an",
            ),
        };
        Copy {
            subject,
            heading: heading.into(),
            paragraphs,
            link: None,
            button: String::new(),
            link_hint: link_hint.into(),
            footer: String::new(),
            support: support.into(),
        }
    }

    fn link(mut self, link: &str, button: &str) -> Copy {
        self.link = Some(link.into());
        self.button = button.into();
        self
    }

    fn footer(mut self, footer: String) -> Copy {
        self.footer = footer;
        self
    }

    fn render(self, b: &BrandingConfig, to: &str, loc: Locale) -> Result<Message, askama::Error> {
        let lang = loc.as_str();
        let html = Html { b, lang, c: &self }.render()?;
        let text = Text { b, c: &self }.render()?;
        Ok(super::templates::message(to, loc, self.subject, html, text))
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`, the same in both locales.
pub fn when(t: i64) -> String {
    let iso = crate::api::iso8601(t);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

/// To the new address: confirm it before the account switches to it.
pub fn change_email_verify(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    link: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("Confirm your new email address for {p}"),
            "Confirm your new email address",
            vec![format!(
                "Someone asked to use {to} as the email address of a {p} account. Confirm it to make the change; until then the account keeps its current address."
            )],
        )
        .link(link, "Confirm new address")
        .footer("If you did not ask for this, ignore this email: nothing changes.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Bestätigen Sie Ihre neue E-Mail-Adresse für {p}"),
            "Neue E-Mail-Adresse bestätigen",
            vec![format!(
                "Jemand möchte {to} als E-Mail-Adresse eines {p}-Kontos verwenden. Bestätigen Sie die Adresse, um die Änderung vorzunehmen; bis dahin behält das Konto seine bisherige Adresse."
            )],
        )
        .link(link, "Neue Adresse bestätigen")
        .footer("Falls Sie das nicht veranlasst haben, ignorieren Sie diese E-Mail: Es ändert sich nichts.".into()),
    };
    c.render(b, to, loc)
}

/// To a new address that already has an account: the change cannot be made. The
/// requester got the same answer as for a free address, so only the owner of this
/// mailbox learns that the address is taken.
pub fn change_email_taken(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("Your email address was not added to another {p} account"),
            "This address already has an account",
            vec![format!(
                "Someone asked to move another {p} account to {to}. This address already belongs to a {p} account, so nothing was changed."
            )],
        )
        .footer("If that was you, sign in to the account that uses this address instead. Otherwise you can ignore this email.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Ihre E-Mail-Adresse wurde keinem anderen {p}-Konto hinzugefügt"),
            "Diese Adresse hat bereits ein Konto",
            vec![format!(
                "Jemand wollte ein anderes {p}-Konto auf {to} umstellen. Diese Adresse gehört bereits zu einem {p}-Konto, daher wurde nichts geändert."
            )],
        )
        .footer("Falls Sie das waren, melden Sie sich stattdessen bei dem Konto mit dieser Adresse an. Andernfalls können Sie diese E-Mail ignorieren.".into()),
    };
    c.render(b, to, loc)
}

/// To the old address once the change is made, with the link that undoes it.
pub fn email_changed(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    new_email: &str,
    revert_link: &str,
    revert_until: i64,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let until = when(revert_until);
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("The email address of your {p} account was changed"),
            "Your email address was changed",
            vec![
                format!("The email address of your {p} account was changed from {to} to {new_email}."),
                format!("If you did not do this, undo the change until {until}: the account gets this address back and every device is signed out."),
            ],
        )
        .link(revert_link, "Undo the change")
        .footer("If you made this change, you can ignore this email.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Die E-Mail-Adresse Ihres {p}-Kontos wurde geändert"),
            "Ihre E-Mail-Adresse wurde geändert",
            vec![
                format!("Die E-Mail-Adresse Ihres {p}-Kontos wurde von {to} auf {new_email} geändert."),
                format!("Falls Sie das nicht waren, machen Sie die Änderung bis {until} rückgängig: Das Konto erhält diese Adresse zurück und alle Geräte werden abgemeldet."),
            ],
        )
        .link(revert_link, "Änderung rückgängig machen")
        .footer("Falls Sie die Änderung selbst vorgenommen haben, können Sie diese E-Mail ignorieren.".into()),
    };
    c.render(b, to, loc)
}

/// Confirm the deletion of the account (`account_deletion.send_verification`).
pub fn delete_account_confirm(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    link: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("Confirm the deletion of your {p} account"),
            "Delete your account?",
            vec![format!(
                "Someone asked to delete the {p} account of {to}. Open the link to confirm; the account and its data will then be removed."
            )],
        )
        .link(link, "Delete my account")
        .footer("If you did not ask for this, ignore this email: your account stays.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Bestätigen Sie die Löschung Ihres {p}-Kontos"),
            "Konto löschen?",
            vec![format!(
                "Jemand möchte das {p}-Konto von {to} löschen. Öffnen Sie den Link, um das zu bestätigen; das Konto und seine Daten werden dann entfernt."
            )],
        )
        .link(link, "Mein Konto löschen")
        .footer("Falls Sie das nicht veranlasst haben, ignorieren Sie diese E-Mail: Ihr Konto bleibt bestehen.".into()),
    };
    c.render(b, to, loc)
}

/// The deletion is scheduled for `due_at`; signing in before then cancels it.
pub fn account_deletion_scheduled(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    due_at: i64,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let due = when(due_at);
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("Your {p} account will be deleted"),
            "Your account will be deleted",
            vec![
                format!("Your {p} account will be deleted on {due}, with all its data. You have been signed out everywhere."),
                "Changed your mind? Sign in before then and the deletion is cancelled.".into(),
            ],
        )
        .footer("You receive this email because the deletion was requested for your account.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Ihr {p}-Konto wird gelöscht"),
            "Ihr Konto wird gelöscht",
            vec![
                format!("Ihr {p}-Konto wird am {due} mit allen Daten gelöscht. Sie wurden überall abgemeldet."),
                "Haben Sie es sich anders überlegt? Melden Sie sich vorher an, dann wird die Löschung abgebrochen.".into(),
            ],
        )
        .footer("Sie erhalten diese E-Mail, weil die Löschung Ihres Kontos beantragt wurde.".into()),
    };
    c.render(b, to, loc)
}

/// The account and its data are gone.
pub fn account_deleted(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("Your {p} account was deleted"),
            "Your account was deleted",
            vec![format!(
                "Your {p} account and its personal data were deleted, and every sign-in and token of it ended."
            )],
        )
        .footer("This is the last email you receive from us about this account.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Ihr {p}-Konto wurde gelöscht"),
            "Ihr Konto wurde gelöscht",
            vec![format!(
                "Ihr {p}-Konto und seine personenbezogenen Daten wurden gelöscht; alle Anmeldungen und Tokens des Kontos sind beendet."
            )],
        )
        .footer("Dies ist die letzte E-Mail, die Sie zu diesem Konto von uns erhalten.".into()),
    };
    c.render(b, to, loc)
}

/// A refresh token was used twice (RFC 9700 §4.14.2): the sign-in's tokens were
/// revoked; the owner is told which app and when, and where to change the password.
pub fn refresh_reuse(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    app: &str,
    at: i64,
    password_url: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let t = when(at);
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("Security alert: your {p} sign-in in {app} was ended"),
            "A sign-in of yours was ended",
            vec![
                format!(
                    "On {t} a refresh token of your sign-in in {app} was used a second time. That can mean someone copied it, so we ended that sign-in and its tokens; you may need to sign in again in {app}."
                ),
                "If you did not expect this, change your password.".into(),
            ],
        )
        .link(password_url, "Change password")
        .footer("You receive this email because of a security event on your account.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Sicherheitshinweis: Ihre {p}-Anmeldung in {app} wurde beendet"),
            "Eine Ihrer Anmeldungen wurde beendet",
            vec![
                format!(
                    "Am {t} wurde ein Aktualisierungstoken Ihrer Anmeldung in {app} ein zweites Mal verwendet. Das kann bedeuten, dass jemand es kopiert hat; deshalb haben wir diese Anmeldung und ihre Tokens beendet. Eventuell müssen Sie sich in {app} neu anmelden."
                ),
                "Falls Sie das nicht erwartet haben, ändern Sie Ihr Passwort.".into(),
            ],
        )
        .link(password_url, "Passwort ändern")
        .footer("Sie erhalten diese E-Mail wegen eines Sicherheitsereignisses in Ihrem Konto.".into()),
    };
    c.render(b, to, loc)
}

/// What a new-device alert tells about the sign-in.
pub struct SignInSeen<'a> {
    /// "Browser / OS" (`http::user_agent`).
    pub device: &'a str,
    pub ip: &'a str,
    pub at: i64,
}

/// To the owner after a sign-in from a device the account had not been used on
/// (`alerts.new_device`).
pub fn new_device_sign_in(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    seen: &SignInSeen<'_>,
    account_link: &str,
    reset_link: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let (device, ip, at) = (seen.device, seen.ip, when(seen.at));
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("New sign-in to your {p} account"),
            "New sign-in to your account",
            vec![
                format!("Your {p} account was signed in to from a new device."),
                format!("Device: {device}. Address: {ip}. Time: {at}."),
                format!("If this was not you, change your password now ({reset_link}) and sign out the other devices on your account page."),
            ],
        )
        .link(account_link, "Review your devices")
        .footer("If this was you, you can ignore this email.".into()),
        Locale::De => Copy::new(
            loc,
            format!("Neue Anmeldung bei Ihrem {p}-Konto"),
            "Neue Anmeldung bei Ihrem Konto",
            vec![
                format!("Bei Ihrem {p}-Konto wurde sich von einem neuen Gerät aus angemeldet."),
                format!("Gerät: {device}. Adresse: {ip}. Zeit: {at}."),
                format!("Falls Sie das nicht waren, ändern Sie jetzt Ihr Passwort ({reset_link}) und melden Sie die anderen Geräte auf Ihrer Kontoseite ab."),
            ],
        )
        .link(account_link, "Geräte prüfen")
        .footer("Falls Sie das waren, können Sie diese E-Mail ignorieren.".into()),
    };
    c.render(b, to, loc)
}

/// To the owner when repeated failed sign-ins locked the account
/// (`alerts.account_locked`), with the single-use unlock link.
pub fn account_locked(
    b: &BrandingConfig,
    to: &str,
    locale: &str,
    unlock_link: &str,
    reset_link: &str,
) -> Result<Message, askama::Error> {
    let loc = Locale::negotiate(locale);
    let p = &b.product_name;
    let c = match loc {
        Locale::En => Copy::new(
            loc,
            format!("Your {p} account was locked"),
            "Your account was locked",
            vec![
                format!("After repeated failed sign-ins your {p} account was locked for sign-in from new devices. Devices you signed in from before keep working."),
                format!("If these attempts were not yours, someone may be guessing your password: consider changing it ({reset_link})."),
            ],
        )
        .link(unlock_link, "Unlock my account")
        .footer("The link works once. If you do nothing, the lock ends by itself after a while (or stays until an administrator lifts it, if so configured).".into()),
        Locale::De => Copy::new(
            loc,
            format!("Ihr {p}-Konto wurde gesperrt"),
            "Ihr Konto wurde gesperrt",
            vec![
                format!("Nach wiederholten fehlgeschlagenen Anmeldeversuchen wurde Ihr {p}-Konto für Anmeldungen von neuen Geräten gesperrt. Geräte, mit denen Sie sich bereits angemeldet haben, funktionieren weiter."),
                format!("Falls diese Versuche nicht von Ihnen stammen, versucht womöglich jemand, Ihr Passwort zu erraten: Ändern Sie es am besten ({reset_link})."),
            ],
        )
        .link(unlock_link, "Konto entsperren")
        .footer("Der Link funktioniert einmal. Wenn Sie nichts tun, endet die Sperre nach einiger Zeit von selbst (oder bleibt bis zur Freigabe durch einen Administrator, falls so eingestellt).".into()),
    };
    c.render(b, to, loc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_in_both_locales() {
        let b = BrandingConfig::default();
        let link = "https://auth.example.com/x?token=a&b=1";
        let en =
            email_changed(&b, "old@example.com", "en", "new@example.com", link, 0).expect("render");
        assert_eq!(en.locale, "en");
        assert!(en.text.contains(link), "{}", en.text);
        assert!(en.text.contains("1970-01-01 00:00 UTC"), "{}", en.text);
        assert!(en.html.contains("token=a&#38;b=1"), "{}", en.html);
        assert!(en.html.contains("<html lang=\"en\">"), "{}", en.html);
        let de = email_changed(&b, "old@example.com", "de-DE", "new@example.com", link, 0)
            .expect("render");
        assert_eq!(de.locale, "de");
        assert!(de.subject.contains("geändert"), "{}", de.subject);
        assert!(de.html.contains("<html lang=\"de\">"), "{}", de.html);
        assert!(de.text.contains("rückgängig"), "{}", de.text);
        let reuse = refresh_reuse(&b, "x@example.com", "de", "Notes", 0, link).expect("render");
        assert!(reuse.subject.contains("Notes"), "{}", reuse.subject);
        assert!(reuse.text.contains("zweites Mal"), "{}", reuse.text);
        let gone = account_deleted(&b, "x@example.com", "en").expect("render");
        assert!(!gone.html.contains("<a href"), "{}", gone.html);
    }
}
