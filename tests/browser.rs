//! The web console in a real headless Chromium, served by a real `stigmer server`: logging in
//! and out, a resource's history diff and rollback, an execution's page following the run live,
//! a viewer refused a write, stored script rendered inert, and a cross-site form refused for its
//! missing CSRF token. Screenshots for `docs/` are taken here too (`STIGMER_UPDATE_SCREENSHOTS=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

mod support;

use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};
use support::{Server, browser, output};

/// A server with its console, and a home and project directory for the CLI.
struct Site {
    server: Server,
    base: String,
    dir: tempfile::TempDir,
}

impl Site {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_on(
            &dir.path().join("server"),
            "127.0.0.1:0",
            &["--http-listen", "127.0.0.1:0", "--workers", "1"],
        );
        let base = server.http.clone().unwrap();
        Self { server, base, dir }
    }

    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("home")
    }

    /// Applies `yaml` as `token`.
    fn apply(&self, token: &str, yaml: &str) {
        let project = self.dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("resources.yaml"), yaml).unwrap();
        let (ok, _, err) = output(self.server.cli(token, &self.home()), &["apply", "-f", project.to_str().unwrap()]);
        assert!(ok, "{err}");
    }

    fn cli(&self, token: &str, args: &[&str]) -> String {
        let (ok, out, err) = output(self.server.cli(token, &self.home()), args);
        assert!(ok, "{args:?}: {err}");
        out
    }

    /// Starts workflow `name` on the server; its execution id.
    fn run(&self, token: &str, name: &str, input: &Value) -> String {
        let out = self.cli(token, &["workflow", "run", name, "--detach", "--input", &input.to_string()]);
        out.lines().last().unwrap().trim().to_owned()
    }
}

fn agent(name: &str, instructions: &str, labels: &str) -> String {
    format!(
        "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: {name}\n  labels:\n{labels}\nspec:\n  \
         instructions: {instructions}\n  model:\n    provider: ollama\n    name: qwen\n"
    )
}

/// A workflow that sets a value, waits for an event, and sets another.
const WAITER: &str = "apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: waiter\nspec:\n  do:\n    \
     - first:\n        set:\n          got: ${ .order }\n    - paid:\n        listen:\n          to:\n            one:\n              \
     with: { type: com.example.paid }\n    - last:\n        set:\n          done: true\n";

#[tokio::test]
async fn log_in_with_a_token_and_log_out_ends_the_session() {
    let Some(browser) = browser::start().await else { return };
    let site = Site::start();
    let admin = site.server.token("acme", "admin", "ana");
    site.apply(&admin, &agent("support-bot", "Help.", "    team: cs"));

    // A page asked for without a session sends the browser to log in, and back after.
    browser.client.goto(&format!("{}/resources/agent", site.base)).await.unwrap();
    browser.wait_for("document.querySelector('#token')", Duration::from_secs(10)).await;
    assert!(browser.client.current_url().await.unwrap().as_str().contains("/login?next=%2Fresources%2Fagent"));
    browser.client.find(Locator::Id("token")).await.unwrap().send_keys(&admin).await.unwrap();
    browser.client.find(Locator::Id("log-in")).await.unwrap().click().await.unwrap();
    browser.wait_for("document.querySelector('#resources')", Duration::from_secs(10)).await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/resources/agent");
    assert!(browser.text("#resources").await.contains("support-bot"));
    assert!(browser.text("nav .who").await.contains("ana · org acme (admin)"));
    let cookie = browser.session_cookie().await;
    assert!(!cookie.contains(&admin[4..]), "the cookie is a session id, not the token");

    browser.client.goto(&format!("{}/", site.base)).await.unwrap();
    browser.wait_for("document.querySelector('#counts')", Duration::from_secs(10)).await;
    browser.screenshot("console-overview").await;

    browser.client.find(Locator::Id("log-out")).await.unwrap().click().await.unwrap();
    browser.wait_for("document.querySelector('#token')", Duration::from_secs(10)).await;
    // The session is gone on the server: its cookie, replayed, gets the login page.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = replay
        .get(format!("{}/", site.base))
        .header("cookie", format!("stigmer_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login"));
}

#[tokio::test]
async fn a_resources_history_shows_the_diff_and_an_editor_rolls_back_after_seeing_it() {
    let Some(browser) = browser::start().await else { return };
    let site = Site::start();
    let editor = site.server.token("acme", "editor", "eve");
    site.apply(&editor, &agent("support-bot", "Answer politely.", "    team: cs"));
    site.apply(&editor, &agent("support-bot", "Answer tersely.", "    team: cs"));
    browser.log_in(&site.base, &editor).await;

    browser.client.goto(&format!("{}/resources/agent/support-bot/history", site.base)).await.unwrap();
    browser.wait_for("document.querySelector('#diff')", Duration::from_secs(10)).await;
    let diff = browser.text("#diff").await;
    assert!(
        diff.contains("-  instructions: Answer politely.") && diff.contains("+  instructions: Answer tersely."),
        "{diff}"
    );
    assert_eq!(browser.client.find_all(Locator::Css("#diff .added")).await.unwrap().len(), 1);
    browser.screenshot("console-history").await;

    // Generation 1's row offers the rollback; its confirmation shows what would change.
    browser.client.find(Locator::Css("a.button[href$='rollback?to=1']")).await.unwrap().click().await.unwrap();
    browser.wait_for("document.querySelector('#confirm-rollback')", Duration::from_secs(10)).await;
    let preview = browser.text("#diff").await;
    assert!(preview.contains("+  instructions: Answer politely."), "{preview}");
    browser.client.find(Locator::Id("confirm-rollback")).await.unwrap().click().await.unwrap();
    browser.wait_for("document.querySelector('#notice')", Duration::from_secs(10)).await;
    assert!(browser.text("#notice").await.contains("Rolled back to generation 1; now generation 3"));

    let stored: Value =
        serde_json::from_str(&site.cli(&editor, &["get", "agent", "support-bot", "-o", "json"])).unwrap();
    let stored = if stored.is_array() { stored[0].clone() } else { stored };
    assert_eq!(stored.pointer("/spec/instructions").and_then(Value::as_str), Some("Answer politely."), "{stored:#}");
    let history = site.cli(&editor, &["history", "agent", "support-bot"]);
    assert!(history.lines().any(|line| line.starts_with("3 ") && line.contains("eve")), "{history}");
}

#[tokio::test]
async fn an_executions_page_follows_the_run_live_without_reloading() {
    let Some(browser) = browser::start().await else { return };
    let site = Site::start();
    let editor = site.server.token("acme", "editor", "eve");
    site.apply(&editor, WAITER);
    let id = site.run(&editor, "waiter", &json!({"order": 7}));
    site.server.wait_for_status(&editor, &site.home(), &id, "waiting", Duration::from_secs(20));
    browser.log_in(&site.base, &editor).await;

    browser.client.goto(&format!("{}/executions/{id}", site.base)).await.unwrap();
    browser.wait_for("document.querySelector('#status')", Duration::from_secs(10)).await;
    assert_eq!(browser.text("#status").await, "waiting");
    assert!(browser.has("#cancel").await && browser.has("#signal").await, "an editor may cancel and send events");
    let tasks = browser.text("#tasks").await;
    assert!(tasks.contains("first") && tasks.contains("paid") && !tasks.contains("last"), "{tasks}");
    // The page is marked: a reload would lose the mark.
    browser.client.execute("window.sameDocument = true; return null;", vec![]).await.unwrap();
    browser.screenshot("console-execution-live").await;

    site.cli(
        &editor,
        &["event", "send", "--type", "com.example.paid", "--source", "test", "--data", "{\"paid\": true}"],
    );
    browser.wait_for("document.querySelector('#status').textContent === 'completed'", Duration::from_secs(20)).await;
    let tasks = browser.text("#tasks").await;
    assert!(tasks.contains("last"), "{tasks}");
    assert!(browser.text("#output").await.contains("\"done\": true"));
    let same = browser.client.execute("return window.sameDocument === true;", vec![]).await.unwrap();
    assert_eq!(same, json!(true), "the page updated in place");
    assert!(!browser.has("#cancel").await, "a finished run has nothing to cancel");
}

#[tokio::test]
async fn a_viewer_sees_no_write_buttons_and_a_forged_write_gets_403() {
    let Some(browser) = browser::start().await else { return };
    let site = Site::start();
    let editor = site.server.token("acme", "editor", "eve");
    let viewer = site.server.token("acme", "viewer", "vic");
    site.apply(&editor, &agent("support-bot", "One.", "    team: cs"));
    site.apply(&editor, &agent("support-bot", "Two.", "    team: cs"));
    site.apply(&editor, WAITER);
    let id = site.run(&editor, "waiter", &json!({"order": 1}));
    site.server.wait_for_status(&editor, &site.home(), &id, "waiting", Duration::from_secs(20));
    browser.log_in(&site.base, &viewer).await;

    browser.client.goto(&format!("{}/resources/agent/support-bot/history", site.base)).await.unwrap();
    browser.wait_for("document.querySelector('#revisions')", Duration::from_secs(10)).await;
    assert!(!browser.has("a.button").await, "no rollback for a viewer");
    browser.client.goto(&format!("{}/executions/{id}", site.base)).await.unwrap();
    browser.wait_for("document.querySelector('#status')", Duration::from_secs(10)).await;
    assert!(!browser.has("#cancel").await && !browser.has("#signal").await, "no cancel or event form for a viewer");

    // Forged in the page, with the session's own CSRF token: the server still refuses.
    let forged = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             const post = (url, body) => fetch(url, {method: 'POST', body: new URLSearchParams(body)}).then(r => r.status);
             Promise.all([
               post('/resources/agent/support-bot/rollback', {csrf, to: '1'}),
               post(location.pathname + '/cancel', {csrf}),
               post(location.pathname + '/signal', {csrf, type: 'com.example.paid'}),
             ]).then(done);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(forged, json!([403, 403, 403]));
    let record: Value = serde_json::from_str(&site.cli(&editor, &["execution", "get", &id, "-o", "json"])).unwrap();
    assert_eq!(record["status"], "waiting", "nothing was cancelled or delivered");
    let stored = site.cli(&editor, &["get", "agent", "support-bot", "-o", "yaml"]);
    assert!(stored.contains("Two."), "nothing was rolled back: {stored}");
}

#[tokio::test]
async fn stored_script_is_rendered_as_text_and_never_runs() {
    let Some(browser) = browser::start().await else { return };
    let site = Site::start();
    let editor = site.server.token("acme", "editor", "eve");
    let payload = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";
    site.apply(
        &editor,
        &format!(
            "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: bot\n  labels:\n    note: x\nspec:\n  \
             description: '{payload}'\n  instructions: '{payload}'\n  model:\n    provider: ollama\n    name: qwen\n"
        ),
    );
    site.apply(&editor, WAITER);
    let id = site.run(&editor, "waiter", &json!({"order": payload}));
    site.server.wait_for_status(&editor, &site.home(), &id, "waiting", Duration::from_secs(20));
    browser.log_in(&site.base, &editor).await;

    for page in [
        "/resources/agent/bot".to_owned(),
        format!("/executions/{id}"),
        "/resources/agent/%3Cscript%3Ewindow.pwned%3D3%3C%2Fscript%3E".to_owned(),
        "/executions?target=%3Cscript%3Ewindow.pwned%3D4%3C%2Fscript%3E".to_owned(),
    ] {
        browser.client.goto(&format!("{}{page}", site.base)).await.unwrap();
        browser.wait_for("document.readyState === 'complete'", Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pwned = browser.client.execute("return window.pwned === undefined;", vec![]).await.unwrap();
        assert_eq!(pwned, json!(true), "{page} ran stored script");
        assert!(!browser.has("main script, main img").await, "{page} made elements of stored text");
        // Shown as text, or kept as a filter's value.
        let shown = browser
            .client
            .execute("return document.querySelector('main').textContent + (document.querySelector('input[name=target]') || {}).value;", vec![])
            .await
            .unwrap();
        assert!(shown.as_str().unwrap().contains("<script>window.pwned="), "{page} shows the text as text: {shown}");
    }
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_for_its_missing_csrf_token() {
    let Some(browser) = browser::start().await else { return };
    let site = Site::start();
    let editor = site.server.token("acme", "editor", "eve");
    site.apply(&editor, WAITER);
    let id = site.run(&editor, "waiter", &json!({"order": 1}));
    site.server.wait_for_status(&editor, &site.home(), &id, "waiting", Duration::from_secs(20));
    browser.log_in(&site.base, &editor).await;

    // Another origin (same host, another port) serves a form aimed at the console.
    let attacker = attacker_page(&format!("{}/executions/{id}/cancel", site.base)).await;
    browser.client.goto(&attacker).await.unwrap();
    browser.client.find(Locator::Id("go")).await.unwrap().click().await.unwrap();
    browser.wait_for("document.body && document.body.textContent.includes('CSRF')", Duration::from_secs(10)).await;
    assert!(browser.text("main").await.contains("the form's CSRF token is not this session's"));
    let record: Value = serde_json::from_str(&site.cli(&editor, &["execution", "get", &id, "-o", "json"])).unwrap();
    assert_eq!(record["status"], "waiting", "the forged cancel did nothing");

    // The console's own form carries the token, and works.
    browser.client.goto(&format!("{}/executions/{id}", site.base)).await.unwrap();
    browser.wait_for("document.querySelector('#cancel')", Duration::from_secs(10)).await;
    browser.client.execute("window.confirm = () => true; return null;", vec![]).await.unwrap();
    browser.client.find(Locator::Id("cancel")).await.unwrap().click().await.unwrap();
    browser
        .wait_for(
            "document.querySelector('#status') && document.querySelector('#status').textContent === 'cancelled'",
            Duration::from_secs(10),
        )
        .await;
}

/// Serves, on a port of its own, a page whose form posts to `target` without a CSRF token.
async fn attacker_page(target: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let page = format!(
        "<!doctype html><html><body><form method=\"post\" action=\"{target}\"><input type=\"hidden\" name=\"x\" value=\"1\">\
         <button id=\"go\" type=\"submit\">win a prize</button></form></body></html>"
    );
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/")
}
