//! The web console over HTTP, endpoint by endpoint: who may ask for what, the headers every
//! answer carries, sessions and their end, CSRF, no secret value in any page, pages of a long
//! history, sessions shared by replicas on one database, and `stigmer ui` on the local store.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;
use support::{Server, output, postgres, stigmer_bin};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// A form body, as a browser encodes it.
fn encoded(pairs: &[(&str, &str)]) -> String {
    let part = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", part(k), part(v))).collect::<Vec<_>>().join("&")
}

/// Posts `pairs` as a form.
trait FormPost {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormPost for reqwest::RequestBuilder {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded").body(encoded(pairs))
    }
}

/// The value of `name="NAME" value="…"` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// `name=value` of the first `Set-Cookie` for `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with(&format!("{name}=")))
}

/// A browser's worth of state: its session cookie and CSRF token.
struct Visitor {
    client: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Visitor {
    /// Logs in at `base` with `token` through the form, as a browser does.
    async fn log_in(base: &str, token: &str) -> Self {
        let client = client();
        let form = client.get(format!("{base}/login")).send().await.unwrap();
        let pairing = set_cookie(&form, "stigmer_login").unwrap();
        let pairing = pairing.split(';').next().unwrap().to_owned();
        let login = hidden(&form.text().await.unwrap(), "login");
        let response = client
            .post(format!("{base}/login"))
            .header("cookie", &pairing)
            .form_of(&[("token", token), ("login", &login), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
        let cookie = set_cookie(&response, "stigmer_session").unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let mut visitor = Self { client, base: base.to_owned(), cookie, csrf: String::new() };
        let (_, page) = visitor.get("/").await;
        visitor.csrf = hidden(&page, "csrf");
        visitor
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response =
            self.client.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form_of(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

struct Site {
    server: Server,
    base: String,
    dir: tempfile::TempDir,
}

impl Site {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_on(
            &dir.path().join("server"),
            "127.0.0.1:0",
            &[&["--http-listen", "127.0.0.1:0", "--workers", "1"], extra].concat(),
        );
        let base = server.http.clone().unwrap();
        Self { server, base, dir }
    }

    fn cli(&self, token: &str, args: &[&str]) -> String {
        let (ok, out, err) = output(self.server.cli(token, &self.dir.path().join("home")), args);
        assert!(ok, "{args:?}: {err}");
        out
    }

    fn apply(&self, token: &str, yaml: &str) {
        let project = self.dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("resources.yaml"), yaml).unwrap();
        self.cli(token, &["apply", "-f", project.to_str().unwrap()]);
    }
}

fn agent(instructions: &str) -> String {
    format!(
        "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: bot\nspec:\n  instructions: {instructions}\n  \
         model:\n    provider: ollama\n    name: qwen\n"
    )
}

/// Every page the console has, as (method, path).
const PAGES: [(&str, &str); 15] = [
    ("GET", "/"),
    ("GET", "/resources"),
    ("GET", "/resources/agent"),
    ("GET", "/resources/agent/bot"),
    ("GET", "/resources/agent/bot/history"),
    ("GET", "/resources/agent/bot/rollback?to=1"),
    ("POST", "/resources/agent/bot/rollback"),
    ("GET", "/executions"),
    ("GET", "/executions/x"),
    ("GET", "/executions/x/events"),
    ("GET", "/executions/x/live"),
    ("POST", "/executions/x/cancel"),
    ("POST", "/executions/x/signal"),
    ("GET", "/audit"),
    ("POST", "/logout"),
];

#[tokio::test]
async fn every_endpoint_needs_a_session_and_every_answer_carries_the_security_headers() {
    let site = Site::start(&[]);
    let client = client();
    for (method, path) in
        PAGES.iter().copied().chain([("GET", "/login"), ("GET", "/assets/console.js"), ("GET", "/nope")])
    {
        let request = if method == "GET" {
            client.get(format!("{}{path}", site.base))
        } else {
            client.post(format!("{}{path}", site.base))
        };
        let response = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body("csrf=x&to=1")
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "{path}: {policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let signed_in_only = !matches!(path, "/login" | "/assets/console.js" | "/nope");
        match (method, signed_in_only) {
            ("GET", true) => {
                assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
                let to = headers["location"].to_str().unwrap();
                assert!(to.starts_with("/login?next=%2F"), "{path} → {to}");
            }
            ("POST", true) => assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}"),
            _ => {}
        }
    }
    // The events endpoint and the probes are not the console's: they stay as they were.
    let health = client.get(format!("{}/healthz", site.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_is_exchanged_for_a_session_cookie_and_only_console_roles_get_one() {
    let site = Site::start(&[]);
    let admin = site.server.token("acme", "admin", "ana");

    // The form must be the one this server handed out (its pairing cookie).
    let response = client()
        .post(format!("{}/login", site.base))
        .form_of(&[("token", admin.as_str()), ("login", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&response, "stigmer_session").is_none());

    let attempt = |token: String| {
        let base = site.base.clone();
        async move {
            let client = client();
            let form = client.get(format!("{base}/login")).send().await.unwrap();
            let pairing = set_cookie(&form, "stigmer_login").unwrap();
            assert!(pairing.contains("HttpOnly") && pairing.contains("SameSite=Strict"), "{pairing}");
            let login = hidden(&form.text().await.unwrap(), "login");
            let response = client
                .post(format!("{base}/login"))
                .header("cookie", pairing.split(';').next().unwrap())
                .form_of(&[("token", token.as_str()), ("login", &login)])
                .send()
                .await
                .unwrap();
            let cookie = set_cookie(&response, "stigmer_session");
            (response.status(), cookie, response.text().await.unwrap())
        }
    };
    for (role, why) in
        [("worker", "a worker token cannot use the console"), ("events", "a events token cannot use the console")]
    {
        let token = site.server.token("acme", role, role);
        let (status, cookie, page) = attempt(token).await;
        assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None), "{role}");
        assert!(page.contains(why), "{page}");
    }
    let (status, cookie, page) = attempt("stk_nope".to_owned()).await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));
    assert!(page.contains("not an API token"), "{page}");

    // An API token in a link would stay in the browser's history: only the form takes one.
    let linked = client().get(format!("{}/login?token={admin}", site.base)).send().await.unwrap();
    assert_eq!(linked.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&linked, "stigmer_session").is_none());

    let (status, cookie, _) = attempt(admin.clone()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: a Secure cookie would never come back: {cookie}");
    assert!(!cookie.contains(&admin[4..]), "the cookie names a session, it is not the token");

    let visitor = Visitor::log_in(&site.base, &admin).await;
    let (status, page) = visitor.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("ana · org acme") && page.contains("(admin)"), "{page}");
}

#[tokio::test]
async fn roles_are_enforced_on_the_server_for_every_write_and_the_audit_log() {
    let site = Site::start(&[]);
    let admin = site.server.token("acme", "admin", "ana");
    let editor = site.server.token("acme", "editor", "eve");
    let viewer = site.server.token("acme", "viewer", "vic");
    site.apply(&editor, &agent("One."));
    site.apply(&editor, &agent("Two."));

    let viewer = Visitor::log_in(&site.base, &viewer).await;
    let (status, page) = viewer.get("/resources/agent/bot/history").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("Roll back to this"), "no write button for a viewer");
    assert_eq!(viewer.get("/resources/agent/bot/rollback?to=1").await.0, StatusCode::FORBIDDEN);
    let csrf = viewer.csrf.clone();
    assert_eq!(
        viewer.post("/resources/agent/bot/rollback", &[("csrf", &csrf), ("to", "1")]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(viewer.post("/executions/x/cancel", &[("csrf", &csrf)]).await.0, StatusCode::FORBIDDEN);
    assert_eq!(viewer.post("/executions/x/signal", &[("csrf", &csrf), ("type", "t")]).await.0, StatusCode::FORBIDDEN);
    assert_eq!(viewer.get("/audit").await.0, StatusCode::FORBIDDEN);
    assert!(site.cli(&admin, &["get", "agent", "bot", "-o", "yaml"]).contains("Two."), "nothing rolled back");

    let editor = Visitor::log_in(&site.base, &editor).await;
    assert_eq!(editor.get("/audit").await.0, StatusCode::FORBIDDEN, "the audit log is for admins");
    let (status, page) = editor.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("href=\"/audit\""), "no audit link for an editor");

    let admin = Visitor::log_in(&site.base, &admin).await;
    let (status, page) = admin.get("/audit?actor=eve&action=updated").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("agent/bot") && page.contains("eve"), "{page}");
    assert!(!page.contains("<td>created</td>"), "filtered to updates: {page}");
}

#[tokio::test]
async fn a_write_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let site = Site::start(&[]);
    let editor = site.server.token("acme", "editor", "eve");
    site.apply(&editor, &agent("One."));
    site.apply(&editor, &agent("Two."));
    let eve = Visitor::log_in(&site.base, &editor).await;
    let other = Visitor::log_in(&site.base, &editor).await;
    assert_ne!(eve.csrf, other.csrf, "each session has its own token");

    for form in [vec![("to", "1")], vec![("csrf", ""), ("to", "1")], vec![("csrf", other.csrf.as_str()), ("to", "1")]] {
        let (status, page) = eve.post("/resources/agent/bot/rollback", &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form:?}");
        assert!(page.contains("CSRF"), "{page}");
    }
    // The execution controls too: refused for the token before the execution is even looked up.
    for (path, form) in [
        ("/executions/x/cancel", vec![("csrf", other.csrf.as_str())]),
        ("/executions/x/signal", vec![("csrf", other.csrf.as_str()), ("type", "t")]),
        ("/executions/x/signal", vec![("type", "t")]),
    ] {
        let (status, page) = eve.post(path, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} {form:?}");
        assert!(page.contains("CSRF"), "{page}");
    }
    assert!(site.cli(&editor, &["get", "agent", "bot", "-o", "yaml"]).contains("Two."));
    let (status, _) = eve.post("/resources/agent/bot/rollback", &[("csrf", &eve.csrf), ("to", "1")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(site.cli(&editor, &["get", "agent", "bot", "-o", "yaml"]).contains("One."));
    // A rollback confirmed against a generation that moved since is a conflict, not a lost update.
    let (status, page) =
        eve.post("/resources/agent/bot/rollback", &[("csrf", &eve.csrf), ("to", "2"), ("generation", "2")]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
}

#[tokio::test]
async fn resource_lists_filter_by_label_value_or_presence_and_by_name() {
    let site = Site::start(&[]);
    let viewer = site.server.token("acme", "viewer", "vic");
    let editor = site.server.token("acme", "editor", "eve");
    let labelled = |name: &str, labels: &str| {
        format!(
            "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  \
             instructions: Hi.\n  model:\n    provider: ollama\n    name: qwen\n"
        )
    };
    let yaml = [labelled("alpha", "team: cs, tier: gold"), labelled("beta", "team: ops"), labelled("gamma", "")];
    site.apply(&editor, &yaml.join("---\n"));
    let vic = Visitor::log_in(&site.base, &viewer).await;
    for (query, listed) in [
        ("label=team", &["alpha", "beta"][..]),
        ("label=team%3Dcs", &["alpha"]),
        ("label=team%3Dops%2Ctier", &[]),
        ("label=tier%2C+team", &["alpha"]),
        ("q=ET", &["beta"]),
        ("", &["alpha", "beta", "gamma"]),
    ] {
        let (status, page) = vic.get(&format!("/resources/agent?{query}")).await;
        assert_eq!(status, StatusCode::OK);
        let shown: Vec<&str> =
            ["alpha", "beta", "gamma"].into_iter().filter(|name| page.contains(&format!(">{name}</a>"))).collect();
        assert_eq!(shown, listed, "{query}");
    }
}

#[tokio::test]
async fn a_history_across_a_delete_rolls_back_within_the_current_life() {
    let site = Site::start(&[]);
    let editor = site.server.token("acme", "editor", "eve");
    site.apply(&editor, &agent("One."));
    site.apply(&editor, &agent("Two."));
    site.cli(&editor, &["delete", "agent", "bot"]);
    site.apply(&editor, &agent("Three."));
    site.apply(&editor, &agent("Four."));
    let eve = Visitor::log_in(&site.base, &editor).await;
    let (status, page) = eve.get("/resources/agent/bot/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("an earlier life").count(), 2, "generations 1 and 2 of before the delete: {page}");
    assert_eq!(page.matches("rollback?to=1").count(), 1, "one row offers generation 1: {page}");
    assert_eq!(page.matches("<option value=\"1\"").count(), 2, "once in each of the diff's two choices");
    let (status, _) = eve.post("/resources/agent/bot/rollback", &[("csrf", &eve.csrf), ("to", "1")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let now = site.cli(&editor, &["get", "agent", "bot", "-o", "yaml"]);
    assert!(now.contains("Three.") && !now.contains("One."), "{now}");
}

#[tokio::test]
async fn logging_out_or_revoking_the_token_ends_the_session() {
    let site = Site::start(&[]);
    let editor = site.server.token("acme", "editor", "eve");
    let visitor = Visitor::log_in(&site.base, &editor).await;
    assert_eq!(visitor.get("/").await.0, StatusCode::OK);
    assert_eq!(
        visitor.post("/logout", &[("csrf", "wrong")]).await.0,
        StatusCode::FORBIDDEN,
        "logout needs the token too"
    );
    let (status, _) = visitor.post("/logout", &[("csrf", &visitor.csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(visitor.get("/").await.0, StatusCode::SEE_OTHER, "the session is gone on the server");

    let visitor = Visitor::log_in(&site.base, &editor).await;
    let listed = site.cli(&editor, &["whoami", "-o", "json"]);
    assert!(listed.contains("eve"));
    let (ok, out, err) =
        output(Command::new(stigmer_bin()), &["server", "token", "list", "--data", site.server.data.to_str().unwrap()]);
    assert!(ok, "{err}");
    let id = out.lines().find(|line| line.contains("eve")).unwrap().split_whitespace().next().unwrap().to_owned();
    let (ok, _, err) = output(
        Command::new(stigmer_bin()),
        &["server", "token", "revoke", &id, "--data", site.server.data.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert_eq!(visitor.get("/").await.0, StatusCode::SEE_OTHER, "a revoked token's session ends");
}

#[tokio::test]
async fn no_secret_value_reaches_a_page() {
    let site = Site::start(&[]);
    let admin = site.server.token("acme", "admin", "ana");
    let secret = "s3cr3t-value-4711";
    let mut set = site.server.cli(&admin, &site.dir.path().join("home"));
    set.env("API_KEY_VALUE", secret);
    let (ok, _, err) = output(set, &["secret", "set", "api-key", "--from-env", "API_KEY_VALUE"]);
    assert!(ok, "{err}");
    site.apply(
        &admin,
        &format!(
            "apiVersion: agentic.stigmer.ai/v1\nkind: Environment\nmetadata:\n  name: prod\nspec:\n  data:\n    \
             INLINE:\n      value: {secret}-inline\n      isSecret: true\n    REF:\n      secretRef: api-key\n---\n\
             apiVersion: agentic.stigmer.ai/v1\nkind: Workflow\nmetadata:\n  name: echo\nspec:\n  envSpec:\n    \
             data:\n      KEY:\n        isSecret: true\n  do:\n    - show:\n        set:\n          key: ${{ $secret.KEY }}\n"
        ),
    );
    let (ok, out, err) = output(
        site.server.cli(&admin, &site.dir.path().join("home")),
        &["workflow", "run", "echo", "--secret", &format!("KEY={secret}"), "-o", "json"],
    );
    assert!(ok, "{err}");
    assert!(!out.contains(secret), "{out}");
    let id = site.cli(&admin, &["execution", "list", "-o", "name"]).lines().next().unwrap().trim().to_owned();

    let visitor = Visitor::log_in(&site.base, &admin).await;
    for path in [
        "/".to_owned(),
        "/resources/environment/prod".to_owned(),
        "/resources/environment/prod/history".to_owned(),
        "/resources/workflow/echo".to_owned(),
        "/executions".to_owned(),
        format!("/executions/{id}"),
        format!("/executions/{id}/events"),
        "/audit".to_owned(),
    ] {
        let (status, page) = visitor.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!page.contains(secret), "{path} shows a secret value:\n{page}");
    }
    let (_, page) = visitor.get("/resources/environment/prod").await;
    assert!(page.contains("secretRef: prod.INLINE") && page.contains("secretRef: api-key"), "{page}");
}

#[tokio::test]
async fn an_execution_with_20000_events_opens_a_page_of_them_at_a_time() {
    use stigmer::backend::{Backend, ExecutionRecord, ExecutionStatus};
    let home = tempfile::tempdir().unwrap();
    let backend = stigmer::store::redb::LocalBackend::new(home.path().join("local.db"), "tester");
    let id = "long-run".to_owned();
    let record =
        ExecutionRecord::new(id.clone(), "workflow/loop".into(), "tester".into(), json!({}), ExecutionStatus::Running);
    backend.execution_create(record, Vec::new()).await.unwrap();
    for chunk in 0..20 {
        let events: Vec<_> = (0..1000)
            .map(|i| {
                let at = jiff::Timestamp::now().to_string();
                let reference = format!("/do/0/loop/for/{}/step", chunk * 1000 + i);
                serde_json::value::to_raw_value(
                    &json!({"event": "started", "name": "step", "reference": reference, "at": at}),
                )
                .unwrap()
            })
            .collect();
        backend.execution_append(&id, None, events).await.unwrap();
    }

    let (link, _ui) = start_ui(home.path());
    let client = client();
    let session = client.get(&link).send().await.unwrap();
    let cookie = set_cookie(&session, "stigmer_session").unwrap().split(';').next().unwrap().to_owned();
    let base = link.split("/login").next().unwrap();
    let get = |path: String| {
        let request = client.get(format!("{base}{path}")).header("cookie", &cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let page = get(format!("/executions/{id}")).await;
    assert_eq!(page.matches("<summary>JSON</summary>").count(), 500, "one page of events");
    assert!(page.contains("/events?after=500"), "and the way to the next");
    assert!(page.contains("&amp;status=1"), "a history this long is followed by its status only");
    let next = get(format!("/executions/{id}/events?after=19800")).await;
    assert_eq!(next.matches("<summary>JSON</summary>").count(), 200, "the last page");
    assert!(next.contains("/do/0/loop/for/19999/step") && !next.contains("next →"));
}

/// A parked agent execution's page shows the call it waits on (tool, message, arguments
/// escaped) with the forms that decide it; a decision made there is recorded under the
/// session's actor and queues the execution again; a second one is refused.
#[tokio::test]
async fn a_call_waiting_for_approval_is_shown_and_decided_on_its_execution_page() {
    use stigmer::backend::{Backend, ClaimRequest, ExecutionRecord, ExecutionStatus, WorkerInfo};
    let home = tempfile::tempdir().unwrap();
    let backend = stigmer::store::redb::LocalBackend::new(home.path().join("local.db"), "tester");
    let id = "parked-run".to_owned();
    let record =
        ExecutionRecord::new(id.clone(), "agent/ops".into(), "tester".into(), json!({}), ExecutionStatus::Pending);
    backend.execution_create(record, Vec::new()).await.unwrap();
    let worker = WorkerInfo {
        id: "w".into(),
        host: "h".into(),
        version: "v".into(),
        queues: vec!["default".into()],
        concurrency: 1,
        running: 0,
        last_seen: jiff::Timestamp::UNIX_EPOCH,
    };
    let request = ClaimRequest {
        worker,
        lease: std::time::Duration::from_secs(30),
        wait: std::time::Duration::ZERO,
        id: Some(id.clone()),
        take_over: None,
    };
    let claim = backend.execution_claim(request).await.unwrap().unwrap();
    let asked = json!({"event": "approvalRequested", "agent": "ops", "callId": "c1", "tool": "tools__echo",
        "arguments": {"text": "<b>deploy</b>"}, "message": "echo says things out loud"});
    backend
        .execution_park(&id, claim.epoch(), None, vec![serde_json::value::to_raw_value(&asked).unwrap()])
        .await
        .unwrap();

    let (link, _ui) = start_ui(home.path());
    let client = client();
    let session = client.get(&link).send().await.unwrap();
    let cookie = set_cookie(&session, "stigmer_session").unwrap().split(';').next().unwrap().to_owned();
    let base = link.split("/login").next().unwrap().to_owned();
    let page = client.get(format!("{base}/executions/{id}")).header("cookie", &cookie).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("Waiting for approval") && page.contains("tools__echo"), "{page}");
    assert!(page.contains("echo says things out loud"), "{page}");
    assert!(page.contains("&lt;b&gt;deploy&lt;/b&gt;") && !page.contains("<b>deploy"), "arguments escaped: {page}");
    assert!(page.contains("id=\"approve-c1\"") && page.contains("id=\"reject-c1\""), "{page}");
    let csrf = hidden(&page, "csrf");
    let decide =
        |csrf: String| {
            let request = client
                .post(format!("{base}/executions/{id}/approvals"))
                .header("cookie", &cookie)
                .form_of(&[("csrf", &csrf), ("call", "c1"), ("verdict", "reject"), ("reason", "not now")]);
            async move { request.send().await.unwrap().status() }
        };
    assert_eq!(decide("forged".into()).await, StatusCode::FORBIDDEN, "no CSRF token, no decision");
    assert_eq!(backend.execution_get(&id).await.unwrap().unwrap().status, ExecutionStatus::Waiting);
    assert_eq!(decide(csrf.clone()).await, StatusCode::SEE_OTHER);
    assert_eq!(decide(csrf).await, StatusCode::CONFLICT, "decided already");
    assert_eq!(backend.execution_get(&id).await.unwrap().unwrap().status, ExecutionStatus::Pending);
    let events = backend.execution_events(&id, 0, None).await.unwrap();
    let decided = &events.last().unwrap().1;
    assert_eq!(
        (&decided["event"], &decided["approved"], &decided["reason"]),
        (&json!("approvalDecided"), &json!(false), &json!("not now"))
    );
}

/// `stigmer ui` on the local store in `home`: its login link, and the process.
fn start_ui(home: &std::path::Path) -> (String, KillOnDrop) {
    let mut child = Command::new(stigmer_bin())
        .args(["ui", "--port", "0", "--no-open"])
        .env("STIGMER_HOME", home)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut said).unwrap();
    let link = said.split_whitespace().last().unwrap().to_owned();
    (link, KillOnDrop(child))
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn stigmer_ui_serves_the_local_store_behind_a_one_time_link() {
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("bot.yaml"), agent("Local.")).unwrap();
    let (ok, _, err) = output(
        {
            let mut command = Command::new(stigmer_bin());
            command.env("STIGMER_HOME", home.path());
            command
        },
        &["apply", "-f", project.to_str().unwrap()],
    );
    assert!(ok, "{err}");

    let (link, mut ui) = start_ui(home.path());
    assert!(link.starts_with("http://127.0.0.1:") && link.contains("/login?token="), "{link}");
    let client = client();
    let first = client.get(&link).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&first, "stigmer_session").unwrap().split(';').next().unwrap().to_owned();
    let again = client.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "the link works once");
    assert!(again.text().await.unwrap().contains("used already"));

    let base = link.split("/login").next().unwrap();
    let page = client.get(format!("{base}/resources/agent/bot")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Local.") && page.contains("local store in"), "{page}");

    // The terminal says the next link, for another browser.
    let mut stderr = BufReader::new(ui.0.stderr.take().unwrap());
    let mut next = String::new();
    while !next.contains("another browser") {
        next.clear();
        assert!(stderr.read_line(&mut next).unwrap() > 0, "no next link");
    }
    let next = next.split_whitespace().last().unwrap();
    assert_eq!(client.get(next).send().await.unwrap().status(), StatusCode::SEE_OTHER);
}

#[test]
fn stigmer_ui_refuses_a_server_context_and_says_where_its_console_is() {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(stigmer_bin());
    command
        .env("STIGMER_HOME", home.path())
        .env("STIGMER_ENDPOINT", "http://127.0.0.1:9")
        .env("STIGMER_TOKEN", "stk_x");
    let (ok, _, err) = output(command, &["ui", "--no-open", "--port", "0"]);
    assert!(!ok);
    assert!(err.contains("serves the local store") && err.contains("hint:") && err.contains("--http-listen"), "{err}");
}

#[tokio::test]
async fn a_session_made_on_one_replica_holds_on_another() {
    let Some(url) = postgres::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = "0".repeat(64);
    let start = |name: &str| {
        Server::launch(
            &dir.path().join(name),
            "127.0.0.1:0",
            &["--store", &url, "--http-listen", "127.0.0.1:0", "--workers", "0"],
            &[("STIGMER_MASTER_KEY", key.as_str())],
        )
    };
    let (one, two) = (start("one"), start("two"));
    let token = support::make_token_in(&["--store", &url], "acme", "editor", "eve", None);
    let visitor = Visitor::log_in(one.http.as_ref().unwrap(), &token).await;
    let elsewhere = Visitor {
        client: client(),
        base: two.http.clone().unwrap(),
        cookie: visitor.cookie.clone(),
        csrf: visitor.csrf.clone(),
    };
    let (status, page) = elsewhere.get("/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("eve · org acme"));
    let (status, _) = elsewhere.post("/logout", &[("csrf", &visitor.csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(visitor.get("/").await.0, StatusCode::SEE_OTHER, "logged out on one replica: out on all");
}

#[tokio::test]
async fn over_tls_the_console_is_https_and_its_cookies_are_secure() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let server = Server::start_on(
        &dir.path().join("server"),
        "127.0.0.1:0",
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
            "--http-listen",
            "127.0.0.1:0",
            "--workers",
            "0",
        ],
    );
    let base = server.http.clone().unwrap();
    assert!(base.starts_with("https://"), "{base}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let trusting = reqwest::Client::builder()
        .redirect(Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let form = trusting.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let pairing = set_cookie(&form, "stigmer_login").unwrap();
    assert!(pairing.contains("; Secure") && pairing.contains("HttpOnly"), "{pairing}");
    let login = hidden(&form.text().await.unwrap(), "login");
    let token = server.token("acme", "viewer", "vic");
    let signed_in = trusting
        .post(format!("{base}/login"))
        .header("cookie", pairing.split(';').next().unwrap())
        .form_of(&[("token", token.as_str()), ("login", &login)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(&signed_in, "stigmer_session").unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let health = trusting.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the rest of the HTTP side is served over TLS too");
    let plain = client().get(base.replace("https://", "http://") + "/login").send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plain HTTP is not served");
}
