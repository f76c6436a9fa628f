//! The admin console's rules over real HTTP: pages need a session, sessions come from admin
//! keys only, state-changing requests need the CSRF token and this origin, failed logins are
//! limited per client address, and logout (or losing the admin key) ends a session.

use std::sync::Arc;

use chrono::TimeZone;
use fake_ollama::FakeConfig;
use ollama_gateway::usage::clock::ManualClock;
use reqwest::redirect::Policy;
use serde_json::json;

use super::admin::{admin, admin_key};
use super::common::{Env, KEY};

/// A client that shows redirects instead of following them, and keeps no cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Log in with `key` (from `forwarded_for`, when set): the response.
async fn login_as(env: &Env, key: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = browser()
        .post(env.url("/admin/login"))
        .form(&[("key", key), ("next", "/admin/usage")]);
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

/// A session: (the cookie header value, its CSRF token).
async fn session(env: &Env, key: &str) -> (String, String) {
    let response = login_as(env, key, None).await;
    assert_eq!(response.status(), 303);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let page = get_page(env, &cookie, "/admin/keys").await;
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

async fn get_page(env: &Env, cookie: &str, path: &str) -> String {
    let response = browser()
        .get(env.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

async fn key_names(env: &Env, root: &str) -> Vec<String> {
    let (_, keys) = admin(env, root, "GET", "/admin/api/keys", None).await;
    keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn console_pages_need_a_session_and_nothing_else_opens_them() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let client = browser();
    let page = client.get(env.url("/admin/keys")).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(location(&page), "/admin/login?next=%2Fadmin%2Fkeys");
    // Deny by default: a path nobody registered is not a way in either.
    let unknown = client
        .get(env.url("/admin/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 303);
    // An admin key as a bearer opens the admin API, not the console's pages.
    let bearer = client
        .get(env.url("/admin/usage"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 303);
    let change = client
        .post(env.url("/admin/keys"))
        .bearer_auth(&root)
        .form(&[("name", "sneaky")])
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 401);
    assert!(!key_names(&env, &root).await.contains(&"sneaky".to_owned()));
    let form = client.get(env.url("/admin/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(
        form.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let css = client
        .get(env.url("/admin/assets/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // The admin API keeps its own rules.
    let (status, _) = admin(&env, KEY, "GET", "/admin/api/keys", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_admin_key_gets_a_hardened_cookie_and_logout_revokes_the_session() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let response = login_as(&env, &root, None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        "/admin/usage",
        "back to the page asked for"
    );
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in [
        "og_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=28800",
    ] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    // Only a digest is stored: the token itself is not in the database.
    let token = set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("og_session=");
    let db_path = env
        .state
        .config
        .db
        .trim_start_matches("sqlite://")
        .to_owned();
    let bytes = std::fs::read(&db_path).unwrap_or_default();
    let wal = std::fs::read(format!("{db_path}-wal")).unwrap_or_default();
    for file in [&bytes, &wal] {
        assert!(
            !file.windows(token.len()).any(|w| w == token.as_bytes()),
            "the session token is not stored"
        );
    }

    let (cookie, csrf) = session(&env, &root).await;
    let page = browser()
        .get(env.url("/admin/keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["cache-control"], "no-store");
    // Logout is a change: without the token it is refused and the session lives on.
    let refused = browser()
        .post(env.url("/admin/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    get_page(&env, &cookie, "/admin/keys").await;
    let out = browser()
        .post(env.url("/admin/logout"))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The same cookie, kept by someone: worthless now.
    let after = browser()
        .get(env.url("/admin/keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303);
    assert!(location(&after).starts_with("/admin/login"));
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_this_origin() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let (cookie, csrf) = session(&env, &root).await;
    let post = |name: &'static str| {
        browser()
            .post(env.url("/admin/keys"))
            .header("cookie", &cookie)
            .header("host", env.addr.to_string())
            .form(&[("name", name)])
    };
    assert_eq!(post("no-token").send().await.unwrap().status(), 403);
    let wrong = browser()
        .post(env.url("/admin/keys"))
        .header("cookie", &cookie)
        .form(&[
            ("name", "wrong-token"),
            ("_csrf", "0123456789abcdef0123456789abcdef01234567"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let foreign = post("foreign")
        .header("x-csrf-token", &csrf)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "another origin, even with the token");
    let cross = post("cross")
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let names = key_names(&env, &root).await;
    for refused in ["no-token", "wrong-token", "foreign", "cross"] {
        assert!(!names.contains(&refused.to_owned()), "{refused} was made");
    }
    let made = post("by-header")
        .header("x-csrf-token", &csrf)
        .header("origin", format!("http://{}", env.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let page = made.text().await.unwrap();
    assert!(page.contains("id=\"new-key\">og_"), "the key is shown once");
    let made = browser()
        .post(env.url("/admin/keys"))
        .header("cookie", &cookie)
        .form(&[("name", "by-field"), ("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let names = key_names(&env, &root).await;
    assert!(names.contains(&"by-header".to_owned()) && names.contains(&"by-field".to_owned()));
    // A bad field is answered next to it, with 400, and nothing is made.
    let bad = browser()
        .post(env.url("/admin/keys"))
        .header("cookie", &cookie)
        .form(&[
            ("name", "x"),
            ("daily_token_quota", "-5"),
            ("_csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("id=\"create-daily_token_quota-error\"")
    );
}

#[tokio::test]
async fn user_keys_and_wrong_keys_cannot_log_in_and_failed_logins_are_limited_per_address() {
    let env = Env::with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.auth_failures = 3;
    })
    .await;
    let root = admin_key(&env).await;
    let (status, user_key) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "frank-key", "user": "frank"})),
    )
    .await;
    assert_eq!(status, 201);
    let user_key = user_key["key"].as_str().unwrap().to_owned();
    for (key, says) in [
        (user_key.as_str(), "not an admin key"),
        (KEY, "not an admin key"),
        ("sk-wrong", "invalid API key"),
    ] {
        let refused = login_as(&env, key, Some("198.51.100.1")).await;
        assert_eq!(refused.status(), 401, "{key}");
        assert!(refused.headers().get("set-cookie").is_none());
        let page = refused.text().await.unwrap();
        assert!(
            page.contains("id=\"login-key-error\""),
            "the error is next to the field"
        );
        assert!(page.contains(says), "{page}");
    }
    // Three failures from 203.0.113.9: its next attempt is refused even with the right key.
    for _ in 0..3 {
        assert_eq!(
            login_as(&env, "sk-guess", Some("203.0.113.9"))
                .await
                .status(),
            401
        );
    }
    let blocked = login_as(&env, &root, Some("203.0.113.9")).await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    // Another address is not affected.
    assert_eq!(
        login_as(&env, &root, Some("203.0.113.10")).await.status(),
        303
    );
    // The Live page counts them: six refused, one blocked.
    let (cookie, _) = session(&env, &root).await;
    let live = get_page(&env, &cookie, "/admin/live/panels").await;
    for (reason, count) in [("console_login_refused", 6), ("console_login_blocked", 1)] {
        assert!(
            live.contains(&format!(
                "<tr><td><code>{reason}</code></td><td class=\"num\">{count}</td>"
            )),
            "{reason}: {live}"
        );
    }
}

#[tokio::test]
async fn a_session_ends_with_its_key_and_when_it_expires() {
    let start = chrono::Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let env = Env::with_clock(FakeConfig::default(), clock.clone(), |_| {}).await;
    let root = admin_key(&env).await;
    let (status, second) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "second-admin", "admin": true})),
    )
    .await;
    assert_eq!(status, 201);
    let (cookie, _) = session(&env, second["key"].as_str().unwrap()).await;
    let (root_cookie, _) = session(&env, &root).await;
    let id = second["id"].as_str().unwrap();
    let (status, _) = admin(
        &env,
        &root,
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let ended = browser()
        .get(env.url("/admin/keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 303);
    assert!(
        location(&ended).contains("ended=key"),
        "{}",
        location(&ended)
    );
    // GATEWAY_CONSOLE_SESSION (8 h by default) later, the other session is over too.
    get_page(&env, &root_cookie, "/admin/settings").await;
    clock.advance(chrono::Duration::hours(8) + chrono::Duration::seconds(1));
    let expired = browser()
        .get(env.url("/admin/settings"))
        .header("cookie", &root_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 303);
}

#[tokio::test]
async fn the_cookie_is_secure_behind_a_trusted_https_proxy() {
    let env = Env::with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let root = admin_key(&env).await;
    let response = browser()
        .post(env.url("/admin/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("key", root.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

/// Behind a proxy that keeps its own address in `Host` and sends the browser's host in
/// `X-Forwarded-Host`, the browser's `Origin` is that forwarded host: accepted when the peer
/// is a trusted proxy, refused from anyone else (who could send any header).
#[tokio::test]
async fn the_origin_may_be_the_host_a_trusted_proxy_forwarded() {
    for trusted in [true, false] {
        let env = Env::with(|config| {
            if trusted {
                config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            }
        })
        .await;
        let root = admin_key(&env).await;
        let (cookie, csrf) = session(&env, &root).await;
        let post = |name: &str, forwarded_host: &str| {
            browser()
                .post(env.url("/admin/keys"))
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .header("origin", "https://gw.example.org")
                .header("x-forwarded-host", forwarded_host)
                .form(&[("name", name)])
                .send()
        };
        let forwarded = post("via-proxy", "gw.example.org, 10.0.0.2:8080")
            .await
            .unwrap();
        let other = post("other-host", "elsewhere.example").await.unwrap();
        assert_eq!(other.status(), 403, "the origin is not the forwarded host");
        let names = key_names(&env, &root).await;
        assert!(!names.contains(&"other-host".to_owned()));
        if trusted {
            assert_eq!(forwarded.status(), 201, "from a trusted proxy");
            assert!(names.contains(&"via-proxy".to_owned()));
        } else {
            assert_eq!(
                forwarded.status(),
                403,
                "X-Forwarded-Host from an untrusted peer"
            );
            assert!(!names.contains(&"via-proxy".to_owned()));
        }
    }
}

#[tokio::test]
async fn every_page_renders_with_usage_in_the_store() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    for _ in 0..3 {
        assert_eq!(super::admin::chat_status(&env, KEY).await, 200);
    }
    let (cookie, _) = session(&env, &root).await;
    // The usage writer flushes within a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = get_page(&env, &cookie, "/admin/usage?range=hour").await;
        if page.contains("<td>key-1</td><td class=\"num\">3</td>") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage never showed: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for path in [
        "/admin/usage?range=day",
        "/admin/usage?range=7d&by=model",
        "/admin/usage?range=30d",
        "/admin/usage?range=custom&from=2026-01-01&to=2026-01-03",
        "/admin/users",
        "/admin/live",
        "/admin/live/panels",
        "/admin/settings",
    ] {
        let page = get_page(&env, &cookie, path).await;
        assert!(!page.contains(KEY), "{path} shows a key");
    }
    let day = get_page(&env, &cookie, "/admin/usage?range=day").await;
    assert!(
        day.contains("<td>key-1</td><td class=\"num\">3</td>"),
        "hourly totals and stats agree"
    );
    let month = get_page(&env, &cookie, "/admin/usage?range=30d").await;
    assert!(
        month.contains("<td>key-1</td><td class=\"num\">3</td>"),
        "daily totals and stats agree"
    );
    let bad = browser()
        .get(env.url("/admin/usage?range=custom&from=soon&to=later"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("id=\"range-from-error\"")
    );
    let csv = browser()
        .get(env.url("/admin/usage.csv?range=day"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(",key-1,")).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(
        rows[0].split(',').nth(4),
        Some("3"),
        "three requests: {text}"
    );
}
