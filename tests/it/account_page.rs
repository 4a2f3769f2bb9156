//! The hosted account page and its standalone login: return_to rules, CSRF on every
//! form, and that each form changes exactly what it says (and nothing on refusal).

use crate::support::*;

const EMAIL: &str = "anya@example.com";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";

fn jar() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(FIREFOX_LINUX)
        .build()
        .expect("client")
}

/// The value of the first hidden input `name` on a page.
fn hidden(html: &str, name: &str) -> String {
    let pat = format!("name=\"{name}\" value=\"");
    let i = html
        .find(&pat)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + pat.len();
    let j = html[i..].find('"').expect("quote") + i;
    html[i..j]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn live_sessions(
    server: &TestServer,
    user_id: &str,
) -> Vec<klard_auth::store::sessions::Session> {
    klard_auth::ui::session::active_for_user(&server.state, user_id)
        .await
        .expect("sessions")
}

/// Opens the standalone login with `return_to` and posts the form with `password`.
async fn login(
    server: &TestServer,
    c: &reqwest::Client,
    return_to: &str,
    password: &str,
) -> reqwest::Response {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let r = c
        .get(server.url(&format!("/login?{q}")))
        .send()
        .await
        .expect("GET login");
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let csrf = hidden(&page, "csrf_token");
    c.post(server.url("/login"))
        .form(&[
            ("return_to", return_to),
            ("csrf_token", csrf.as_str()),
            ("username", EMAIL),
            ("password", password),
        ])
        .send()
        .await
        .expect("POST login")
}

async fn standalone_login_returns_to_local_paths_only(db: Db) {
    let server = TestServer::start(db).await;
    let user = server.user(EMAIL).await;
    let c = jar();
    // The account page sends a stranger to the login.
    let r = c.get(server.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?return_to=/account");

    // The login form's CSRF token is bound to this browser (its id cookie) alone.
    let first = c
        .get(server.url("/login?return_to=/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(
        first
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("klard_browser="))
    );
    let first = first.text().await.unwrap();
    assert_eq!(hidden(&first, "return_to"), "/account");
    let early_csrf = hidden(&first, "csrf_token");
    // Wrong password: the form again, 400, no session.
    let r = login(&server, &c, "/account", "wrong password").await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("The email or password is incorrect.")
    );
    // A forged form (no or another browser's CSRF token): refused, no session.
    let r = c
        .post(server.url("/login"))
        .form(&[
            ("return_to", "/account"),
            ("csrf_token", "forged"),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let stranger = reqwest::Client::new();
    let r = stranger
        .post(server.url("/login"))
        .form(&[("username", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(live_sessions(&server, &user.id).await.is_empty());

    // Good: 303 to return_to with the session cookie.
    let r = login(&server, &c, "/account", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    let cookie: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookie
            .iter()
            .any(|c| c.starts_with("klard_session=") && c.contains("HttpOnly"))
    );
    let live = live_sessions(&server, &user.id).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].user_agent.as_deref(), Some(FIREFOX_LINUX));
    assert_eq!(live[0].amr, vec!["pwd".to_string()]);
    let r = c.get(server.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(EMAIL));
    // Signed in already: straight on.
    let r = c
        .get(server.url("/login?return_to=/account%3Fdone%3Dprofile"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=profile");
    // Signing in again (a form loaded before) replaces this browser's session.
    let r = c
        .post(server.url("/login"))
        .form(&[
            ("return_to", "/account"),
            ("csrf_token", early_csrf.as_str()),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let again = live_sessions(&server, &user.id).await;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].sid, live[0].sid);

    // Only local paths under the issuer; anything else lands on the account page.
    for (given, want) in [
        ("/account?done=renamed", "/account?done=renamed"),
        ("/authorize?client_id=x", "/authorize?client_id=x"),
        ("https://evil.example.com/account", "/account"),
        ("//evil.example.com/account", "/account"),
        ("/\\evil.example.com", "/account"),
        ("javascript:alert(1)", "/account"),
        ("account", "/account"),
        ("/account\r\nSet-Cookie: x=y", "/account"),
        ("", "/account"),
    ] {
        let fresh = jar();
        let r = login(&server, &fresh, given, PASSWORD).await;
        assert_eq!(r.status(), 303, "{given:?}");
        assert_eq!(location(&r), want, "{given:?}");
    }
}

async fn standalone_login_under_an_issuer_path(db: Db) {
    let server = TestServer::start_with(db, |c| {
        c.issuer = format!("{}/auth", c.issuer);
    })
    .await;
    server.user(EMAIL).await;
    let r = server
        .http()
        .get(server.url("/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/auth/login?return_to=/auth/account");
    for (given, want) in [
        ("/auth/account?done=profile", "/auth/account?done=profile"),
        ("/auth", "/auth"),
        ("/other", "/auth/account"),
        ("/authority", "/auth/account"),
        ("/auth/../other", "/auth/account"),
    ] {
        let r = login(&server, &jar(), given, PASSWORD).await;
        assert_eq!(r.status(), 303, "{given}");
        assert_eq!(location(&r), want, "{given}");
    }
}

/// A browser signed in through the standalone login, with its account page.
async fn signed_in(server: &TestServer) -> (reqwest::Client, String) {
    let c = jar();
    let r = login(server, &c, "/account", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let page = c
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (c, page)
}

async fn post_form(
    c: &reqwest::Client,
    server: &TestServer,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    c.post(server.url(path))
        .form(form)
        .send()
        .await
        .expect("POST")
}

async fn account_page_lists_devices_and_renames_them(db: Db) {
    let server = TestServer::start(db).await;
    let user = server.user(EMAIL).await;
    let phone = klard_auth::ui::session::begin(
        &server.state,
        &user,
        vec!["pwd".into()],
        Some("192.0.2.7".into()),
        Some("Klard/2.3.1 CFNetwork/1494.0.7 Darwin/23.4.0".into()),
        true,
    )
    .await
    .unwrap();
    let stranger = server.user("spike@example.com").await;
    let theirs = klard_auth::ui::session::begin(&server.state, &stranger, vec![], None, None, true)
        .await
        .unwrap();
    let (c, page) = signed_in(&server).await;
    for want in [
        "Firefox 125 on Linux",
        "This device",
        "Klard app 2 on iOS 17",
        "192.0.2.7",
        "127.0.0.1",
        "/account/password",
        "/account/email",
        "/account/delete",
        "/forgot-password",
        "Sign out all other devices",
    ] {
        assert!(page.contains(want), "{want} missing");
    }
    assert!(
        !page.contains(&theirs.session.sid),
        "another user's session is listed"
    );
    let csrf = hidden(&page, "csrf_token");
    let sid = phone.session.sid.as_str();
    let name_of = |sid: String| {
        let db = server.state.db.clone();
        async move {
            klard_auth::store::sessions::by_sid(&db, &sid)
                .await
                .unwrap()
                .unwrap()
                .name
        }
    };

    let r = post_form(
        &c,
        &server,
        "/account/sessions/rename",
        &[
            ("csrf_token", &csrf),
            ("sid", sid),
            ("name", " Anya's iPhone "),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=renamed");
    assert_eq!(name_of(sid.into()).await.as_deref(), Some("Anya's iPhone"));
    let page = c
        .get(server.url("/account?done=renamed"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("The device name was saved."));
    assert!(
        page.contains("Anya&#39;s iPhone") || page.contains("Anya&#x27;s iPhone"),
        "{page}"
    );

    // Refusals change nothing.
    let too_long = "x".repeat(101);
    for (form, status) in [
        (
            vec![("csrf_token", "forged"), ("sid", sid), ("name", "Evil")],
            403,
        ),
        (vec![("sid", sid), ("name", "Evil")], 403),
        (
            vec![
                ("csrf_token", csrf.as_str()),
                ("sid", sid),
                ("name", too_long.as_str()),
            ],
            400,
        ),
        (
            vec![
                ("csrf_token", csrf.as_str()),
                ("sid", theirs.session.sid.as_str()),
                ("name", "Evil"),
            ],
            404,
        ),
        (
            vec![
                ("csrf_token", csrf.as_str()),
                ("sid", "no-such-session"),
                ("name", "Evil"),
            ],
            404,
        ),
    ] {
        let r = post_form(&c, &server, "/account/sessions/rename", &form).await;
        assert_eq!(r.status(), status, "{form:?}");
        assert_eq!(
            name_of(sid.into()).await.as_deref(),
            Some("Anya's iPhone"),
            "{form:?}"
        );
    }
    assert_eq!(name_of(theirs.session.sid.clone()).await, None);
    // The CSRF token of another browser of the same user does not work here.
    let (_, other_page) = signed_in(&server).await;
    let other_csrf = hidden(&other_page, "csrf_token");
    let r = post_form(
        &c,
        &server,
        "/account/sessions/rename",
        &[("csrf_token", &other_csrf), ("sid", sid), ("name", "Evil")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(name_of(sid.into()).await.as_deref(), Some("Anya's iPhone"));
    // An empty name clears it.
    let r = post_form(
        &c,
        &server,
        "/account/sessions/rename",
        &[("csrf_token", &csrf), ("sid", sid), ("name", "")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(name_of(sid.into()).await, None);
}

async fn account_page_edits_the_profile(db: Db) {
    let server = TestServer::start(db).await;
    let user = server.user(EMAIL).await;
    let (c, page) = signed_in(&server).await;
    assert!(page.contains("value=\"Buffy Summers\""));
    let csrf = hidden(&page, "csrf_token");
    let name = || async {
        klard_auth::store::users::by_id(&server.state.db, &user.id)
            .await
            .unwrap()
            .unwrap()
            .claims
            .get("name")
            .cloned()
    };
    let r = post_form(
        &c,
        &server,
        "/account/profile",
        &[("csrf_token", "forged"), ("name", "Evil")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(name().await, Some(serde_json::json!("Buffy Summers")));
    let r = post_form(
        &c,
        &server,
        "/account/profile",
        &[("csrf_token", &csrf), ("name", &"n".repeat(257))],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(name().await, Some(serde_json::json!("Buffy Summers")));
    let r = post_form(
        &c,
        &server,
        "/account/profile",
        &[("csrf_token", &csrf), ("name", "Anya Jenkins")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=profile");
    assert_eq!(name().await, Some(serde_json::json!("Anya Jenkins")));
    // Without a session the form goes to the login and changes nothing.
    let r = post_form(
        &jar(),
        &server,
        "/account/profile",
        &[("csrf_token", &csrf), ("name", "Nobody")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?return_to=/account");
    assert_eq!(name().await, Some(serde_json::json!("Anya Jenkins")));
}

async fn account_page_revokes_devices_and_signs_out(db: Db) {
    let server = TestServer::start(db).await;
    let user = server.user(EMAIL).await;
    let start = |ua: &'static str| {
        let state = server.state.clone();
        let user = user.clone();
        async move {
            klard_auth::ui::session::begin(&state, &user, vec![], None, Some(ua.into()), true)
                .await
                .unwrap()
        }
    };
    let a = start("curl/8.5.0").await;
    let b = start("okhttp/4.12.0").await;
    let stranger = server.user("spike@example.com").await;
    let theirs = klard_auth::ui::session::begin(&server.state, &stranger, vec![], None, None, true)
        .await
        .unwrap();
    let (c, page) = signed_in(&server).await;
    let csrf = hidden(&page, "csrf_token");
    assert_eq!(live_sessions(&server, &user.id).await.len(), 3);

    // Another user's session and a forged form: refused, nothing revoked.
    let r = post_form(
        &c,
        &server,
        "/account/sessions/revoke",
        &[("csrf_token", &csrf), ("sid", &theirs.session.sid)],
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(live_sessions(&server, &stranger.id).await.len(), 1);
    let r = post_form(
        &c,
        &server,
        "/account/sessions/revoke",
        &[("csrf_token", "x"), ("sid", &a.session.sid)],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(live_sessions(&server, &user.id).await.len(), 3);

    // One device.
    let r = post_form(
        &c,
        &server,
        "/account/sessions/revoke",
        &[("csrf_token", &csrf), ("sid", &a.session.sid)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=revoked");
    let live: Vec<String> = live_sessions(&server, &user.id)
        .await
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(live.len(), 2);
    assert!(!live.contains(&a.session.sid));
    // Revoking it again: it is no longer one of the user's live sessions.
    let r = post_form(
        &c,
        &server,
        "/account/sessions/revoke",
        &[("csrf_token", &csrf), ("sid", &a.session.sid)],
    )
    .await;
    assert_eq!(r.status(), 404);

    // All others: a forged form first.
    let r = post_form(
        &c,
        &server,
        "/account/sessions/revoke-others",
        &[("csrf_token", "x")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(live_sessions(&server, &user.id).await.len(), 2);
    let r = post_form(
        &c,
        &server,
        "/account/sessions/revoke-others",
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let live = live_sessions(&server, &user.id).await;
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].sid, b.session.sid);
    assert_eq!(live_sessions(&server, &stranger.id).await.len(), 1);
    let page = c
        .get(server.url("/account?done=revoked-others"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("All other devices were signed out."));
    assert!(!page.contains("Sign out all other devices"));

    // Sign out: forged first, then for real.
    let r = post_form(&c, &server, "/account/sign-out", &[("csrf_token", "x")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(live_sessions(&server, &user.id).await.len(), 1);
    let r = post_form(&c, &server, "/account/sign-out", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?return_to=/account");
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("klard_session=;"));
    assert!(cleared);
    assert!(live_sessions(&server, &user.id).await.is_empty());
    let r = c.get(server.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
}

async fn password_page_changes_the_password(db: Db) {
    let server = TestServer::start(db).await;
    let user = server.user(EMAIL).await;
    let c = jar();
    let r = c.get(server.url("/account/password")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?return_to=/account/password");
    let r = login(&server, &c, "/account/password", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account/password");
    // A second device of the same user.
    let other = jar();
    assert_eq!(
        login(&server, &other, "/account", PASSWORD).await.status(),
        303
    );
    assert_eq!(live_sessions(&server, &user.id).await.len(), 2);
    let stored_hash = || async {
        klard_auth::store::users::by_id(&server.state.db, &user.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
    };
    let before = stored_hash().await;

    let page = c
        .get(server.url("/account/password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");
    let new = "a completely new passphrase";
    let post = |fields: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = server.url("/account/password");
        async move { c.post(url).form(&fields).send().await.unwrap() }
    };
    let fields = |csrf: &str, current: &str, new: &str, confirm: &str| {
        vec![
            ("csrf_token", csrf.to_string()),
            ("current_password", current.to_string()),
            ("new_password", new.to_string()),
            ("confirm_password", confirm.to_string()),
            ("sign_out_others", "on".to_string()),
        ]
    };
    // Refusals: forged CSRF, mismatch, policy, wrong current password. Nothing changes.
    for (f, status, text) in [
        (
            fields("forged", PASSWORD, new, new),
            400,
            "The form expired",
        ),
        (
            fields(&csrf, PASSWORD, new, "something else"),
            400,
            "do not match",
        ),
        (fields(&csrf, PASSWORD, "short", "short"), 400, "too short"),
        (
            fields(&csrf, "not my password", new, new),
            400,
            "current password is incorrect",
        ),
    ] {
        let r = post(f).await;
        assert_eq!(r.status(), status);
        let body = r.text().await.unwrap();
        assert!(
            body.to_lowercase().contains(&text.to_lowercase()),
            "{text}: {body}"
        );
        assert_eq!(stored_hash().await, before);
        assert_eq!(live_sessions(&server, &user.id).await.len(), 2);
    }
    let r = post(fields(&csrf, PASSWORD, new, new)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Password changed"));
    assert_ne!(stored_hash().await, before);
    // The other device is out, this one stays signed in.
    assert_eq!(live_sessions(&server, &user.id).await.len(), 1);
    let r = other.get(server.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = c.get(server.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The new password signs in, the old one no longer does.
    assert_eq!(login(&server, &jar(), "/account", new).await.status(), 303);
    assert_eq!(
        login(&server, &jar(), "/account", PASSWORD).await.status(),
        400
    );
}

db_tests!(
    password_page_changes_the_password,
    standalone_login_returns_to_local_paths_only,
    standalone_login_under_an_issuer_path,
    account_page_lists_devices_and_renames_them,
    account_page_edits_the_profile,
    account_page_revokes_devices_and_signs_out,
);
