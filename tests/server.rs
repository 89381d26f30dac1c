//! `stigmer server` as teams and CI meet it: tokens and their refusals, roles, orgs that never
//! see each other, request limits, TLS, health, shutdown, login and contexts — and the seed's
//! migration path from a laptop to a server. Every server is the real binary on 127.0.0.1 with
//! an ephemeral port; every client is the real binary or the library's remote backend.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test that cannot set up fails loudly")]

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use support::{Server, make_token, root};

mod support;

/// A client run of the binary with its own home, pointed at a server by the environment.
fn client(home: &Path, endpoint: &str, token: &str, org: Option<&str>) -> Command {
    let mut cmd = Command::cargo_bin("stigmer").unwrap();
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .env("STIGMER_HOME", home)
        .env("STIGMER_ENDPOINT", endpoint)
        .env("STIGMER_TOKEN", token);
    if let Some(org) = org {
        cmd.env("STIGMER_ORG", org);
    }
    cmd
}

fn text(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn skill(name: &str, body: &str) -> String {
    format!("apiVersion: agentic.stigmer.ai/v1\nkind: Skill\nmetadata:\n  name: {name}\nspec:\n  skillMd: {body}\n")
}

/// The hex part of a token, which must never appear anywhere but where it was made.
fn secret_part(token: &str) -> &str {
    &token[4..]
}

#[test]
fn every_refused_token_gets_unauthenticated_with_a_reason_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let home = dir.path().join("home");
    let good = server.token("acme", "admin", "ana");
    let expiring = make_token(&server.data, "acme", "admin", "brief", Some("1s"));
    let revoked = server.token("acme", "admin", "gone");
    let revoked_id = {
        let output = std::process::Command::new(support::stigmer_bin())
            .args(["server", "token", "list", "--data"])
            .arg(&server.data)
            .output()
            .unwrap();
        let list = String::from_utf8(output.stdout).unwrap();
        assert!(!list.contains(secret_part(&good)), "token list never shows tokens");
        list.lines().find(|l| l.contains(" gone ")).unwrap().split_whitespace().next().unwrap().to_owned()
    };
    // Revoked while the server runs: the next call is refused.
    assert!(client(&home, &server.endpoint, &revoked, None).args(["get"]).output().unwrap().status.success());
    let output = std::process::Command::new(support::stigmer_bin())
        .args(["server", "token", "revoke", &revoked_id, "--data"])
        .arg(&server.data)
        .output()
        .unwrap();
    assert!(output.status.success());
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let forged = format!("stk_{}", "0".repeat(64));
    let cases = [
        ("", "no token"),
        ("not-a-token", "malformed token"),
        (forged.as_str(), "unknown token"),
        (expiring.as_str(), "expired at"),
        (revoked.as_str(), "was revoked at"),
    ];
    for (token, reason) in cases {
        let mut cmd = client(&home, &server.endpoint, token, None);
        if token.is_empty() {
            cmd.env_remove("STIGMER_TOKEN");
            // No token at all: the client refuses before calling; a raw call is refused below.
        }
        let (code, out, err) = text(&cmd.args(["get"]).output().unwrap());
        assert_eq!(code, 2, "{reason}: {err}");
        assert_eq!(out, "");
        if token.is_empty() {
            assert!(err.contains("STIGMER_ENDPOINT is set but STIGMER_TOKEN is not"), "{err}");
            continue;
        }
        assert!(err.contains("error: the server refused the token") && err.contains(reason), "{reason}: {err}");
        assert!(err.contains("hint: log in again"), "{err}");
        if token.len() > 4 {
            assert!(!err.contains(secret_part(token)), "the token is echoed: {err}");
        }
    }
    let (code, _, _) = text(&client(&home, &server.endpoint, &good, None).args(["get"]).output().unwrap());
    assert_eq!(code, 0, "a good token still works");

    // A call with no authorization header at all.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let mut raw =
            stigmer::proto::v1::backend_service_client::BackendServiceClient::connect(server.endpoint.clone())
                .await
                .unwrap();
        raw.list(stigmer::proto::v1::ListRequest::default()).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("no token"), "{}", status.message());

    let log = std::fs::read_to_string(&server.log).unwrap();
    for token in [&good, &expiring, &revoked] {
        assert!(!log.contains(secret_part(token)), "a token leaked into the server log");
    }
}

#[test]
fn roles_limit_what_a_token_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let home = dir.path().join("home");
    let viewer = server.token("acme", "viewer", "vic");
    let editor = server.token("acme", "editor", "eddie");
    let admin = server.token("acme", "admin", "ana");

    let as_viewer = || client(&home, &server.endpoint, &viewer, Some("acme"));
    let (code, out, _) =
        text(&as_viewer().args(["apply", "-f", "examples/skills.yaml", "--dry-run"]).output().unwrap());
    assert_eq!(code, 0, "a viewer may plan: {out}");
    let (code, out, err) = text(&as_viewer().args(["apply", "-f", "examples/skills.yaml"]).output().unwrap());
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("error: permission denied: a viewer token cannot change resources"), "{err}");
    assert!(err.contains("hint: ask an admin"), "{err}");

    let as_editor = || client(&home, &server.endpoint, &editor, Some("acme"));
    assert!(as_editor().args(["apply", "-f", "examples/skills.yaml"]).output().unwrap().status.success());
    let (_, names, _) = text(&as_viewer().args(["get", "-o", "name"]).output().unwrap());
    assert_eq!(names, "skill/refund-policy\nskill/tone-of-voice\n", "a viewer reads");
    let (code, _, err) = text(&as_editor().args(["audit"]).output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains("an editor token cannot do this (read the audit log"), "{err}");

    let (code, audit, err) =
        text(&client(&home, &server.endpoint, &admin, Some("acme")).args(["audit", "-o", "json"]).output().unwrap());
    assert_eq!(code, 0, "{err}");
    let entries: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let entries = entries["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["actor"], "eddie");
        assert!(entry["address"].as_str().unwrap().starts_with("127.0.0.1:"), "{entry}");
    }
}

#[test]
fn orgs_never_see_each_others_resources() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let home = dir.path().join("home");
    let acme = server.token("acme", "admin", "ana");
    let globex = server.token("globex", "admin", "gus");
    let project = dir.path().join("plan");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("s.yaml"), skill("master-plan", "Acme's secret plan.")).unwrap();
    let project = project.to_str().unwrap();
    assert!(
        client(&home, &server.endpoint, &acme, None).args(["apply", "-f", project]).output().unwrap().status.success()
    );

    // Guessing the name from another org: it does not exist there.
    let as_globex = || client(&home, &server.endpoint, &globex, None);
    let (code, _, err) = text(&as_globex().args(["get", "skill", "master-plan"]).output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains("skill/master-plan does not exist"), "{err}");
    assert_eq!(text(&as_globex().args(["get", "-o", "name"]).output().unwrap()).1, "");
    assert_eq!(text(&as_globex().args(["history", "skill", "master-plan"]).output().unwrap()).0, 2);
    let (code, _, err) = text(&as_globex().args(["delete", "skill", "master-plan"]).output().unwrap());
    assert_eq!(code, 2, "{err}");

    // Naming the other org outright is refused.
    let (code, _, err) = text(
        &client(&home, &server.endpoint, &globex, Some("acme")).args(["get", "skill", "master-plan"]).output().unwrap(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("permission denied: the token acts in org globex, not in org acme"), "{err}");
    let (code, _, err) =
        text(&client(&home, &server.endpoint, &globex, Some("acme")).args(["apply", "-f", project]).output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains("permission denied"), "{err}");

    // The same name in another org is another resource.
    assert!(as_globex().args(["apply", "-f", project]).output().unwrap().status.success());
    let (_, json, _) =
        text(&client(&home, &server.endpoint, &acme, None).args(["get", "-o", "json"]).output().unwrap());
    let resources: serde_json::Value = serde_json::from_str(&json).unwrap();
    let resources = resources["items"].as_array().unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0]["status"]["generation"], 1, "acme's resource was not touched");
}

#[test]
fn oversized_requests_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&dir.path().join("data"), "127.0.0.1:0", &["--max-request-mib", "1"]);
    let token = server.token("acme", "admin", "ana");
    let project = dir.path().join("big");
    std::fs::create_dir_all(&project).unwrap();
    for i in 0..4 {
        std::fs::write(project.join(format!("s{i}.yaml")), skill(&format!("s{i}"), &"x".repeat(400_000))).unwrap();
    }
    let home = dir.path().join("home");
    let (code, _, err) = text(
        &client(&home, &server.endpoint, &token, None)
            .args(["apply", "-f", project.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("message length too large"), "{err}");
    assert!(err.contains("hint:") && err.contains("--max-request-mib"), "{err}");
    assert_eq!(
        text(&client(&home, &server.endpoint, &token, None).args(["get", "-o", "name"]).output().unwrap()).1,
        ""
    );
}

#[test]
fn a_client_that_stalls_mid_request_is_cut_off_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&dir.path().join("data"), "127.0.0.1:0", &["--request-timeout-secs", "1"]);
    let token = server.token("acme", "admin", "ana");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (code, elapsed) = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let mut client = client.ready().await.unwrap();
        let request = http::Request::post(format!("{}/stigmer.backend.v1.BackendService/Apply", server.endpoint))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {token}"))
            .header("x-stigmer-org", "acme")
            .header("x-stigmer-protocol", "1")
            .body(())
            .unwrap();
        let (response, mut body) = client.send_request(request, false).unwrap();
        // A message announcing 1000 bytes, then 10 of them, then nothing more.
        let mut frame = vec![0u8];
        frame.extend(1000u32.to_be_bytes());
        frame.extend([0u8; 10]);
        body.send_data(frame.into(), false).unwrap();
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(std::time::Duration::from_secs(15), response)
            .await
            .expect("the server cut the stalled call off")
            .unwrap();
        let code = response.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
        (code, started.elapsed())
    });
    // 1 is Cancelled: the call timed out, after the configured second and not before.
    assert_eq!(code.as_deref(), Some("1"));
    assert!(elapsed >= std::time::Duration::from_millis(900), "{elapsed:?}");
    let home = dir.path().join("home");
    let (code, _, err) =
        text(&client(&home, &server.endpoint, &token, None).args(["get", "-o", "name"]).output().unwrap());
    assert_eq!(code, 0, "others are still served: {err}");
}

#[test]
fn an_unreachable_server_is_named_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("stk_{}", "a".repeat(64));
    let (code, _, err) = text(&client(dir.path(), "http://127.0.0.1:1", &token, None).args(["get"]).output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains("error: cannot reach the server at http://127.0.0.1:1"), "{err}");
    assert!(err.contains("hint: start a server with `stigmer server`"), "{err}");
    let (code, _, err) = text(&client(dir.path(), "not a url", &token, None).args(["get"]).output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains("not a valid endpoint URL"), "{err}");
}

#[test]
fn a_client_of_another_protocol_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let token = server.token("acme", "admin", "ana");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let error = runtime.block_on(async {
        let mut raw =
            stigmer::proto::v1::backend_service_client::BackendServiceClient::connect(server.endpoint.clone())
                .await
                .unwrap();
        let mut request = tonic::Request::new(stigmer::proto::v1::ListRequest::default());
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        request.metadata_mut().insert("x-stigmer-protocol", "99".parse().unwrap());
        let status = raw.list(request).await.unwrap_err();
        stigmer::proto::status_to_error(&status, &server.endpoint)
    });
    assert!(matches!(error, stigmer::backend::BackendError::Incompatible(_)), "{error:?}");
    assert!(error.to_string().contains("the client speaks protocol 99; this server"), "{error}");
}

#[test]
fn health_is_served_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let channel =
            tonic::transport::Endpoint::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
        health.check(request).await.unwrap().into_inner().status
    });
    drop(runtime);
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    assert!(server.stop().success());
}

#[test]
fn login_saves_a_private_context_and_contexts_switch() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let token = server.token("acme", "editor", "ana");
    let home = dir.path().join("home");
    let stigmer = || {
        let mut cmd = Command::cargo_bin("stigmer").unwrap();
        cmd.current_dir(root()).env("NO_COLOR", "1").env("STIGMER_HOME", &home).env("USER", "tester");
        cmd
    };
    let mut outputs = String::new();
    let mut run = |cmd: &mut Command| {
        let (code, out, err) = text(&cmd.output().unwrap());
        outputs.push_str(&out);
        outputs.push_str(&err);
        (code, out, err)
    };

    let (code, _, err) =
        run(stigmer().args(["login", "--endpoint", &server.endpoint]).write_stdin(format!("stk_{}\n", "0".repeat(64))));
    assert_eq!(code, 2);
    assert!(err.contains("unknown token"), "{err}");
    assert!(!home.join("config.yaml").exists(), "a refused login writes nothing");

    let (code, out, err) = run(stigmer()
        .args(["login", "--endpoint", &server.endpoint, "--org", "acme"])
        .write_stdin(format!("{token}\n")));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("as ana in org acme (editor); context acme is now current"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("config.yaml")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_, out, _) = run(stigmer().args(["whoami"]));
    assert!(out.contains("actor:   ana") && out.contains("org:     acme") && out.contains("role:    editor"), "{out}");
    assert_eq!(run(stigmer().args(["apply", "-f", "examples/skills.yaml"])).0, 0);
    let (_, out, _) = run(stigmer().args(["context", "list"]));
    assert!(out.contains("acme") && out.contains(&server.endpoint), "{out}");
    let (_, out, _) = run(stigmer().args(["context", "show"]));
    assert!(out.contains("token:    set (hidden)"), "{out}");

    // The local store is another context: empty.
    assert_eq!(run(stigmer().args(["--context", "local", "get", "-o", "name"])).1, "");
    assert_eq!(run(stigmer().args(["get", "-o", "name"])).1, "skill/refund-policy\nskill/tone-of-voice\n");
    let (code, _, err) = run(stigmer().args(["--context", "nope", "get"]));
    assert_eq!(code, 2);
    assert!(err.contains("there is no context named \"nope\""), "{err}");
    // A project's stigmer.yaml may name its context; --context still wins over it.
    let pinned = dir.path().join("pinned");
    std::fs::create_dir_all(&pinned).unwrap();
    std::fs::write(pinned.join("stigmer.yaml"), "name: pinned\ncontext: local\n").unwrap();
    std::fs::write(pinned.join("s.yaml"), skill("pinned-skill", "Local only.")).unwrap();
    let pinned = pinned.to_str().unwrap();
    assert_eq!(run(stigmer().args(["apply", "-f", pinned])).0, 0);
    assert_eq!(run(stigmer().args(["--context", "local", "get", "-o", "name"])).1, "skill/pinned-skill\n");
    assert_eq!(run(stigmer().args(["get", "skill", "pinned-skill"])).0, 2, "not on the server");
    let (code, out, _) = run(stigmer().args(["--context", "acme", "diff", "-f", pinned]));
    assert_eq!(code, 1, "--context wins over the project's: {out}");
    assert_eq!(run(stigmer().args(["context", "use", "local"])).0, 0);
    assert_eq!(run(stigmer().args(["delete", "skill", "pinned-skill"])).0, 0);
    assert_eq!(run(stigmer().args(["get", "-o", "name"])).1, "");
    assert_eq!(run(stigmer().args(["context", "use", "acme"])).0, 0);
    let (code, out, _) = run(stigmer().args(["logout"]));
    assert_eq!(code, 0);
    assert!(out.contains("logged out of context acme"), "{out}");
    let config = std::fs::read_to_string(home.join("config.yaml")).unwrap();
    assert!(!config.contains(secret_part(&token)), "logout removes the token");

    assert!(!outputs.contains(secret_part(&token)), "the token was printed");
    assert!(!std::fs::read_to_string(&server.log).unwrap().contains(secret_part(&token)));
}

#[test]
fn tls_is_served_and_a_mismatch_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start_on(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert!(server.endpoint.starts_with("https://"), "{}", server.endpoint);
    let token = server.token("acme", "admin", "ana");
    let home = dir.path().join("home");
    let https = format!("https://localhost:{}", server.port());

    let (code, out, err) =
        text(&client(&home, &https, &token, None).env("STIGMER_CA_CERT", &cert).args(["whoami"]).output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("org:     acme"), "{out}");

    // Not trusting the certificate.
    let (code, _, err) = text(&client(&home, &https, &token, None).args(["whoami"]).output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains(&format!("cannot reach the server at {https}")), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "the cause is named: {err}");

    // Plain HTTP to a TLS server.
    let http = format!("http://127.0.0.1:{}", server.port());
    let (code, _, err) = text(&client(&home, &http, &token, None).args(["whoami"]).output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains(&format!("cannot reach the server at {http}")), "{err}");
    assert!(err.contains("https://"), "the fix is named: {err}");
}

#[test]
fn the_migration_path_from_laptop_to_server() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("support-desk");
    let stigmer = || {
        let mut cmd = Command::cargo_bin("stigmer").unwrap();
        cmd.current_dir(dir.path()).env("NO_COLOR", "1").env("STIGMER_HOME", &home).env("USER", "tester");
        cmd
    };
    assert!(stigmer().args(["init", "support-desk"]).output().unwrap().status.success());
    let (code, _, err) = text(&stigmer().args(["apply", "-f", "support-desk"]).output().unwrap());
    assert_eq!(code, 0, "{err}");
    let (code, exported, _) = text(&stigmer().args(["export", "--all"]).output().unwrap());
    assert_eq!(code, 0);
    let (_, local_names, _) = text(&stigmer().args(["get", "-o", "name"]).output().unwrap());
    assert!(local_names.lines().count() >= 5, "{local_names}");

    let server = Server::start(&dir.path().join("data"));
    let token = server.token("acme", "admin", "tester");
    let (code, _, err) = text(
        &stigmer()
            .args(["login", "--endpoint", &server.endpoint, "--org", "acme"])
            .write_stdin(token)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        text(&stigmer().args(["import", "--set", "support-desk"]).write_stdin(exported.clone()).output().unwrap());
    assert_eq!(code, 0, "{err}");
    let (_, remote_names, _) = text(&stigmer().args(["get", "-o", "name"]).output().unwrap());
    assert_eq!(remote_names, local_names, "the server holds what the laptop held");
    let (code, out, _) = text(&stigmer().args(["diff", "-f", project.to_str().unwrap()]).output().unwrap());
    assert_eq!(code, 0, "no changes: {out}");
    let (_, again, _) = text(&stigmer().args(["export", "--all"]).output().unwrap());
    assert_eq!(again, exported, "exports match byte for byte");
}

#[test]
fn an_apply_is_one_request_whatever_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let token = server.token("acme", "admin", "ana");
    let home = dir.path().join("home");
    let (code, out, err) =
        text(&client(&home, &server.endpoint, &token, None).args(["apply", "-f", "examples/"]).output().unwrap());
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("12 created, 0 updated, 0 deleted, 0 unchanged\n"), "{out}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert_eq!(log.matches("method=\"Apply\"").count(), 1, "one Apply call for the whole plan:\n{log}");
}
