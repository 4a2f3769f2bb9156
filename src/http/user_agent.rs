//! The device behind a `User-Agent`: browser (name and major version) and operating
//! system (name and version), for the session list of the account page and the
//! `browser` / `os` fields of `list-sessions`.
//!
//! A small table of the agents our users actually send (desktop and mobile browsers,
//! and the Klard apps, which talk through OkHttp on Android and CFNetwork on iOS)
//! rather than a crate with a large regex database: this is shown to people to help
//! them recognise their devices, never used for a security decision, and an unknown
//! agent simply shows as unknown.

/// A name with an optional version, e.g. `Chrome` `124` or `macOS` `10.15.7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: &'static str,
    pub version: Option<String>,
}

impl Named {
    /// `Chrome 124`, or the bare name without a version.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub browser: Option<Named>,
    pub os: Option<Named>,
}

pub fn parse(ua: &str) -> Device {
    Device {
        browser: browser(ua),
        os: os(ua),
    }
}

/// The version after `token/` (digits and dots).
fn version_after(ua: &str, token: &str) -> Option<String> {
    let i = ua.find(token)? + token.len();
    let v: String = ua[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '_')
        .collect();
    let v = v.replace('_', ".").trim_end_matches('.').to_string();
    (!v.is_empty()).then_some(v)
}

fn major(v: Option<String>) -> Option<String> {
    v.map(|v| v.split('.').next().unwrap_or("").to_string())
        .filter(|m| !m.is_empty())
}

fn named(name: &'static str, version: Option<String>) -> Option<Named> {
    Some(Named { name, version })
}

/// The browser (or HTTP client), most specific first: Edge, Opera and Samsung Internet
/// also say `Chrome/`, Chrome also says `Safari/`.
fn browser(ua: &str) -> Option<Named> {
    const TABLE: &[(&str, &str)] = &[
        ("Klard/", "Klard app"),
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
    ];
    for (token, name) in TABLE {
        if ua.contains(token) {
            return named(name, major(version_after(ua, token)));
        }
    }
    if ua.contains("Safari/") && ua.contains("Version/") {
        return named("Safari", major(version_after(ua, "Version/")));
    }
    let lower = ua.to_ascii_lowercase();
    for (token, name) in [
        ("okhttp/", "OkHttp"),
        ("cfnetwork/", "CFNetwork"),
        ("curl/", "curl"),
    ] {
        if let Some(i) = lower.find(token) {
            // Versions are ASCII, so the lower-cased offsets hold in the original.
            return named(
                name,
                major(version_after(&ua[i..], &ua[i..i + token.len()])),
            );
        }
    }
    None
}

/// iOS and Android before macOS and Linux: their agents also say `Mac OS X` / `Linux`.
fn os(ua: &str) -> Option<Named> {
    if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        let v = version_after(ua, "iPhone OS ").or_else(|| version_after(ua, "CPU OS "));
        return named("iOS", v);
    }
    if let Some(v) = darwin_ios(ua) {
        return named("iOS", v);
    }
    if ua.contains("Android") {
        return named("Android", version_after(ua, "Android "));
    }
    if ua.to_ascii_lowercase().contains("okhttp/") {
        // OkHttp's own agent names no platform; the Klard Android app sends it.
        return named("Android", None);
    }
    if ua.contains("Windows") {
        let v = version_after(ua, "Windows NT ").map(|nt| windows_release(&nt));
        return named("Windows", v);
    }
    if ua.contains("CrOS") {
        return named("ChromeOS", None);
    }
    if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        return named("macOS", version_after(ua, "Mac OS X "));
    }
    if ua.contains("Linux") {
        return named("Linux", None);
    }
    None
}

/// An app agent built by CFNetwork (`Klard/2.1 CFNetwork/1494.0.7 Darwin/23.4.0`)
/// names only the Darwin kernel; Darwin 20 and later map to iOS (major − 6). `None`
/// when this is not such an agent, `Some(None)` when the version is unknown.
fn darwin_ios(ua: &str) -> Option<Option<String>> {
    if !ua.contains("CFNetwork/") {
        return None;
    }
    let darwin = major(version_after(ua, "Darwin/")).and_then(|m| m.parse::<u32>().ok());
    Some(darwin.filter(|d| *d >= 20).map(|d| (d - 6).to_string()))
}

/// Windows NT kernel versions as release names (NT 10.0 is both 10 and 11; the agent
/// cannot tell them apart).
fn windows_release(nt: &str) -> String {
    match nt {
        "10.0" => "10/11".into(),
        "6.3" => "8.1".into(),
        "6.2" => "8".into(),
        "6.1" => "7".into(),
        other => format!("NT {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(ua: &str) -> (String, String) {
        let d = parse(ua);
        (
            d.browser.map(|b| b.label()).unwrap_or_default(),
            d.os.map(|o| o.label()).unwrap_or_default(),
        )
    }

    fn check(ua: &str, browser: &str, os: &str) {
        assert_eq!(labels(ua), (browser.to_string(), os.to_string()), "{ua}");
    }

    #[test]
    fn desktop_browsers() {
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Chrome 124",
            "Windows 10/11",
        );
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
            "Edge 124",
            "Windows 10/11",
        );
        check(
            "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
            "Firefox 115",
            "Windows 7",
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
            "Safari 17",
            "macOS 10.15.7",
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
            "Firefox 125",
            "macOS 10.15",
        );
        check(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
            "Opera 109",
            "Linux",
        );
        check(
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Chrome 124",
            "ChromeOS",
        );
    }

    #[test]
    fn mobile_browsers() {
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
            "Safari 17",
            "iOS 17.4.1",
        );
        check(
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
            "Chrome 124",
            "iOS 16.6",
        );
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
            "Firefox 125",
            "iOS 17.4",
        );
        check(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
            "Chrome 124",
            "Android 14",
        );
        check(
            "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
            "Samsung Internet 24",
            "Android 13",
        );
    }

    #[test]
    fn klard_apps_and_http_clients() {
        check(
            "Klard/2.3.1 (Android 14; Pixel 8) okhttp/4.12.0",
            "Klard app 2",
            "Android 14",
        );
        check("okhttp/4.12.0", "OkHttp 4", "Android");
        check(
            "Klard/2.3.1 CFNetwork/1494.0.7 Darwin/23.4.0",
            "Klard app 2",
            "iOS 17",
        );
        check(
            "KlardApp CFNetwork/1410.0.3 Darwin/22.4.0",
            "CFNetwork 1410",
            "iOS 16",
        );
        check("CFNetwork/1.0 Darwin/19.0.0", "CFNetwork 1", "iOS");
        check(
            "Dalvik/2.1.0 (Linux; U; Android 12; SM-G991B Build/SP1A.210812.016)",
            "",
            "Android 12",
        );
        check("curl/8.5.0", "curl 8", "");
    }

    #[test]
    fn unknown_and_hostile_agents() {
        check("", "", "");
        check("something/unknown", "", "");
        check("Chrome/", "Chrome", "");
        check("Firefox/\u{1F600}", "Firefox", "");
        check("Android ", "", "Android");
        check("OKHTTP/3.1 \u{e9}", "OkHttp 3", "Android");
    }
}
