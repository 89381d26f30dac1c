//! Behaviour of `call: http` (against a tiny HTTP/1.1 server on 127.0.0.1) and of `run: shell`
//! / `run: script` (real processes), written from the DSL reference.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const HEADER: &str = "document: { dsl: '1.0.0', namespace: test, name: io, version: '0.1.0' }\n";
const COMMUNICATION: &str = "https://serverlessworkflow.io/spec/1.0.0/errors/communication";
const RUNTIME: &str = "https://serverlessworkflow.io/spec/1.0.0/errors/runtime";

async fn run_body(body: &str, input: Value, options: &RunOptions) -> Result<Value, WorkflowError> {
    let workflow: dsl::Workflow = serde_saphyr::from_str(&format!("{HEADER}{body}")).unwrap();
    run(&workflow, input, options, &mut ()).await
}

/// A request the test server received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A one-request-per-connection HTTP/1.1 server answering canned responses per path.
struct Server {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move { serve(stream, &log).await });
            }
        });
        Self { addr, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn last(&self) -> Received {
        self.received.lock().unwrap().last().cloned().unwrap()
    }
}

async fn serve(mut stream: TcpStream, log: &Mutex<Vec<Received>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await.unwrap();
        if read == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let target = request_line.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.unwrap();
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    let request = Received { method, target, headers, body: String::from_utf8_lossy(&body).into_owned() };
    log.lock().unwrap().push(request.clone());

    if let Some((status, content_type, body, extra)) = authenticating_or_documents(&request, log) {
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    // The OpenAPI documents put their operations under `/api`.
    let path = request.target.split('?').next().unwrap_or_default();
    let path = path.strip_prefix("/api").unwrap_or(path).to_owned();
    let query = request.target.split_once('?').map(|(_, q)| q.to_owned());
    let (status, content_type, body, extra) = if let Some(id) = path.strip_prefix("/pets/") {
        ("200 OK", "application/json", json!({ "id": id, "query": query }).to_string(), "")
    } else {
        match path.as_str() {
            "/echo" => ("200 OK", "application/json; charset=utf-8", request.body.clone(), "X-Echo: yes\r\n"),
            "/auth" => (
                "200 OK",
                "application/json",
                json!({ "authorization": request.header("authorization") }).to_string(),
                "",
            ),
            "/text" => ("200 OK", "text/plain", "hello".to_owned(), ""),
            "/script.py" => ("200 OK", "text/x-python", "print('from the web')".to_owned(), ""),
            "/empty" => ("204 No Content", "text/plain", String::new(), ""),
            "/redirect" => ("302 Found", "text/plain", String::new(), "Location: /text\r\n"),
            _ => ("404 Not Found", "text/plain", "no such pet".to_owned(), ""),
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[tokio::test]
async fn http_get_expands_the_uri_template_and_appends_the_query() {
    let server = Server::start().await;
    let body = format!(
        "
do:
  - getPet:
      call: http
      with:
        method: get
        endpoint: {}
        query:
          status: ${{ .status }}
          limit: '10'
",
        server.url("/pets/{petId}")
    );
    let output = run_body(&body, json!({ "petId": 42, "status": "sold out" }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!({ "id": "42", "query": "status=sold+out&limit=10" }));
    let received = server.last();
    assert_eq!(received.method, "GET");
    assert_eq!(received.target, "/pets/42?status=sold+out&limit=10");
    assert!(received.header("authorization").is_none());

    // An endpoint object, and a URI given by an expression.
    let body = "
do:
  - get:
      call: http
      with:
        method: GET
        endpoint: { uri: '${ .base + \"/text\" }' }
";
    let output = run_body(body, json!({ "base": server.url("") }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!("hello"));

    // An object cannot fill a URI template variable.
    let body =
        format!("do:\n  - get: {{ call: http, with: {{ method: get, endpoint: '{}' }} }}\n", server.url("/pets/{id}"));
    let error = run_body(&body, json!({ "id": { "nested": 1 } }), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.kind(), "expression");
    assert_eq!(error.status, 400);
}

#[tokio::test]
async fn http_post_sends_the_evaluated_body_as_json_and_headers() {
    let server = Server::start().await;
    let body = format!(
        "
do:
  - create:
      call: http
      with:
        method: post
        endpoint: {}
        headers:
          X-Trace: ${{ .trace }}
        body:
          name: ${{ .name }}
          tags: [ a, '${{ .trace }}' ]
",
        server.url("/echo")
    );
    let output = run_body(&body, json!({ "name": "Ada", "trace": "t-1" }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!({ "name": "Ada", "tags": ["a", "t-1"] }));
    let received = server.last();
    assert_eq!(received.method, "POST");
    assert_eq!(received.header("content-type"), Some("application/json"));
    assert_eq!(received.header("x-trace"), Some("t-1"));
    assert_eq!(serde_json::from_str::<Value>(&received.body).unwrap(), output);
}

#[tokio::test]
async fn http_output_response_and_raw() {
    let server = Server::start().await;
    let body = format!(
        "
do:
  - create:
      call: http
      with:
        method: post
        endpoint: {}
        headers: {{ X-Trace: abc }}
        body: '${{ {{ n: 1 }} }}'
        output: response
",
        server.url("/echo")
    );
    let output = run_body(&body, json!(null), &RunOptions::new()).await.unwrap();
    assert_eq!(output["statusCode"], 200);
    assert_eq!(output["content"], json!({ "n": 1 }));
    assert_eq!(output["headers"]["x-echo"], "yes");
    assert_eq!(output["headers"]["content-type"], "application/json; charset=utf-8");
    assert_eq!(output["request"]["method"], "post");
    assert_eq!(output["request"]["uri"], server.url("/echo"));
    assert_eq!(output["request"]["headers"]["x-trace"], "abc");

    let body = format!(
        "do:\n  - get: {{ call: http, with: {{ method: get, endpoint: '{}', output: raw }} }}\n",
        server.url("/text")
    );
    assert_eq!(run_body(&body, json!(null), &RunOptions::new()).await.unwrap(), json!("aGVsbG8="));
    // No content is null.
    let body =
        format!("do:\n  - get: {{ call: http, with: {{ method: get, endpoint: '{}' }} }}\n", server.url("/empty"));
    assert_eq!(run_body(&body, json!(null), &RunOptions::new()).await.unwrap(), json!(null));
}

#[tokio::test]
async fn http_errors_are_communication_errors_a_catch_can_match_by_status() {
    let server = Server::start().await;
    let body = format!(
        "
do:
  - fetch:
      try:
        - getPet:
            call: http
            with: {{ method: get, endpoint: '{}' }}
      catch:
        errors:
          with:
            type: https://serverlessworkflow.io/spec/1.0.0/errors/communication
            status: 404
        as: failure
        do:
          - handle:
              set:
                caught: ${{ $failure.status }}
                instance: ${{ $failure.instance }}
",
        server.url("/nowhere")
    );
    let output = run_body(&body, json!(null), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!({ "caught": 404, "instance": "/do/0/fetch/try/0/getPet" }));

    // Uncaught, it faults the workflow.
    let body =
        format!("do:\n  - getPet: {{ call: http, with: {{ method: get, endpoint: '{}' }} }}\n", server.url("/nowhere"));
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.type_, COMMUNICATION);
    assert_eq!(error.status, 404);
    assert_eq!(error.instance.as_deref(), Some("/do/0/getPet"));
    let detail = error.detail.unwrap();
    assert!(detail.contains("404 Not Found") && detail.contains("no such pet"), "{detail}");

    // 3xx: an error unless `redirect` is true, which follows it.
    let body =
        format!("do:\n  - get: {{ call: http, with: {{ method: get, endpoint: '{}' }} }}\n", server.url("/redirect"));
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!((error.type_.as_str(), error.status), (COMMUNICATION, 302));
    let body = format!(
        "do:\n  - get: {{ call: http, with: {{ method: get, endpoint: '{}', redirect: true }} }}\n",
        server.url("/redirect")
    );
    assert_eq!(run_body(&body, json!(null), &RunOptions::new()).await.unwrap(), json!("hello"));
}

#[tokio::test]
async fn http_connection_refused_is_a_503_communication_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let body = format!("do:\n  - get: {{ call: http, with: {{ method: get, endpoint: 'http://{addr}/x' }} }}\n");
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.type_, COMMUNICATION);
    assert_eq!(error.status, 503);
    assert_eq!(error.instance.as_deref(), Some("/do/0/get"));
}

#[tokio::test]
async fn http_authentication_basic_and_bearer_inline_by_name_and_from_secrets() {
    let server = Server::start().await;
    let url = server.url("/auth");
    let body = format!(
        "
use:
  authentications:
    admin:
      basic: {{ username: admin, password: secret }}
    fromSecret:
      basic: {{ use: creds }}
    tokenSecret:
      bearer: {{ use: apiToken }}
do:
  - inlineBearer:
      call: http
      with:
        method: get
        endpoint:
          uri: {url}
          authentication:
            bearer:
              token: ${{ .token }}
      output:
        as: '${{ {{ bearer: .authorization }} }}'
  - namedBasic:
      call: http
      with:
        method: get
        endpoint: {{ uri: '{url}', authentication: {{ use: admin }} }}
      output:
        as: '${{ $input + {{ basic: .authorization }} }}'
  - secretBasic:
      call: http
      with:
        method: get
        endpoint: {{ uri: '{url}', authentication: {{ use: fromSecret }} }}
      output:
        as: '${{ $input + {{ secretBasic: .authorization }} }}'
  - secretBearer:
      call: http
      with:
        method: get
        endpoint: {{ uri: '{url}', authentication: {{ use: tokenSecret }} }}
      output:
        as: '${{ $input + {{ secretBearer: .authorization }} }}'
"
    );
    let options = RunOptions::new()
        .secret_value("creds", json!({ "username": "bob", "password": "pw" }))
        .secret("apiToken", &crate::secrets::SecretValue::new("s3cr3t".to_owned()));
    let output = run_body(&body, json!({ "token": "t0k3n" }), &options).await.unwrap();
    assert_eq!(
        output,
        json!({
            "bearer": "Bearer t0k3n",
            "basic": "Basic YWRtaW46c2VjcmV0",
            "secretBasic": "Basic Ym9iOnB3",
            "secretBearer": "Bearer s3cr3t",
        })
    );

    // A missing secret is an authorization error; an OAuth2 grant needing a browser is unsupported.
    let body = format!(
        "do:\n  - get: {{ call: http, with: {{ method: get, endpoint: {{ uri: '{url}', authentication: {{ basic: {{ use: nope }} }} }} }} }}\n"
    );
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!((error.kind(), error.status), ("authorization", 403));
    let body = format!(
        "do:\n  - get: {{ call: http, with: {{ method: get, endpoint: {{ uri: '{url}', authentication: {{ oauth2: {{ authority: 'http://idp', grant: authorization_code }} }} }} }} }}\n"
    );
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.kind(), "configuration");
    assert!(error.detail.unwrap().contains("the `authorization_code` grant is not supported"));
}

const REALM: &str = "stigmer@test";
const NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
const OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";
const CLIENT_SECRET: &str = "s3cr3t";

/// A test server response: status line, content type, body and extra header lines.
type Answer = (&'static str, &'static str, String, String);

/// What the test server answers on the paths that authenticate (digest challenges, an OAuth2
/// token endpoint, OpenID Connect discovery) or serve OpenAPI documents; `None` elsewhere.
fn authenticating_or_documents(request: &Received, log: &Mutex<Vec<Received>>) -> Option<Answer> {
    let path = request.target.split('?').next().unwrap_or_default();
    let json = |status, value: Value| (status, "application/json", value.to_string(), String::new());
    Some(match path {
        "/digest/md5" | "/digest/sha256" | "/digest/legacy" => {
            let (algorithm, qop) = match path {
                "/digest/md5" => (Some("MD5"), true),
                "/digest/sha256" => (Some("SHA-256"), true),
                _ => (None, false),
            };
            if digest_is_valid(request, algorithm.unwrap_or("MD5"), qop) {
                return Some(json("200 OK", json!({ "user": "Mufasa", "body": request.body })));
            }
            let mut challenge = format!("Digest realm=\"{REALM}\", nonce=\"{NONCE}\", opaque=\"{OPAQUE}\"");
            if qop {
                challenge.push_str(", qop=\"auth,auth-int\"");
            }
            if let Some(algorithm) = algorithm {
                challenge = format!("{challenge}, algorithm={algorithm}");
            }
            let extra = format!("WWW-Authenticate: Basic realm=\"other\"\r\nWWW-Authenticate: {challenge}\r\n");
            ("401 Unauthorized", "text/plain", "who are you?".to_owned(), extra)
        }
        "/oauth2/token" => {
            let form: Vec<(&str, &str)> = request.body.split('&').filter_map(|pair| pair.split_once('=')).collect();
            let field = |name: &str| form.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            let basic = format!("Basic {}", super::encode::base64(format!("stigmer:{CLIENT_SECRET}").as_bytes()));
            let client_ok = request.header("authorization") == Some(basic.as_str())
                || (field("client_id") == Some("stigmer") && field("client_secret") == Some(CLIENT_SECRET));
            let grant_ok = match field("grant_type") {
                Some("client_credentials") => true,
                Some("password") => field("username") == Some("ada") && field("password") == Some("lovelace"),
                _ => false,
            };
            if !client_ok || !grant_ok {
                // A careless server that echoes what it was sent.
                let echoed = field("client_secret").or(field("password")).unwrap_or_default();
                return Some(json(
                    "401 Unauthorized",
                    json!({ "error": "invalid_client", "error_description": format!("bad credentials {echoed}") }),
                ));
            }
            let issued = log.lock().unwrap().iter().filter(|r| r.target == "/oauth2/token").count();
            json(
                "200 OK",
                json!({ "access_token": format!("tok-{issued}"), "token_type": "Bearer", "expires_in": 3600 }),
            )
        }
        "/.well-known/openid-configuration" => {
            let host = request.header("host").unwrap_or_default();
            json(
                "200 OK",
                json!({ "issuer": format!("http://{host}"), "token_endpoint": format!("http://{host}/oauth2/token") }),
            )
        }
        "/openapi.json" => json("200 OK", openapi_3_document()),
        "/swagger.yaml" => ("200 OK", "application/yaml", SWAGGER_2_DOCUMENT.to_owned(), String::new()),
        _ => return None,
    })
}

/// Whether the request carries the digest answer the server expects of Mufasa.
fn digest_is_valid(request: &Received, algorithm: &str, qop: bool) -> bool {
    use sha2::Digest as _;
    let Some(header) = request.header("authorization").and_then(|h| h.strip_prefix("Digest ")) else {
        return false;
    };
    let params: std::collections::HashMap<&str, &str> = header
        .split(", ")
        .filter_map(|param| param.split_once('='))
        .map(|(name, value)| (name, value.trim_matches('"')))
        .collect();
    let param = |name: &str| params.get(name).copied().unwrap_or_default();
    let hash = |data: String| match algorithm {
        "SHA-256" => hex::encode(sha2::Sha256::digest(data.as_bytes())),
        _ => hex::encode(md5::Md5::digest(data.as_bytes())),
    };
    if param("username") != "Mufasa"
        || param("realm") != REALM
        || param("nonce") != NONCE
        || param("opaque") != OPAQUE
        || param("uri") != request.target
    {
        return false;
    }
    let ha1 = hash(format!("Mufasa:{REALM}:Circle of Life"));
    let ha2 = hash(format!("{}:{}", request.method, request.target));
    let expected = if qop {
        if param("qop") != "auth" || param("nc") != "00000001" || param("cnonce").len() < 8 {
            return false;
        }
        hash(format!("{ha1}:{NONCE}:00000001:{}:auth:{ha2}", param("cnonce")))
    } else {
        hash(format!("{ha1}:{NONCE}:{ha2}"))
    };
    param("response") == expected
}

#[tokio::test]
async fn http_digest_authentication_answers_the_challenge_with_md5_sha_256_and_legacy() {
    let server = Server::start().await;
    let body = format!(
        "
use:
  authentications:
    fromSecret:
      digest: {{ use: mufasa }}
do:
  - md5:
      call: http
      with:
        method: post
        endpoint:
          uri: {md5}
          authentication:
            digest: {{ username: Mufasa, password: '${{ .password }}' }}
        body: {{ roar: true }}
      output:
        as: '${{ {{ md5: . }} }}'
  - sha256:
      call: http
      with:
        method: get
        endpoint: {{ uri: '{sha256}', authentication: {{ use: fromSecret }} }}
      output:
        as: '${{ $input + {{ sha256: .user }} }}'
  - legacy:
      call: http
      with:
        method: get
        endpoint: {{ uri: '{legacy}', authentication: {{ use: fromSecret }} }}
        output: response
      output:
        as: '${{ $input + {{ legacy: .content.user, echoed: .request }} }}'
",
        md5 = server.url("/digest/md5?x=1"),
        sha256 = server.url("/digest/sha256"),
        legacy = server.url("/digest/legacy"),
    );
    let options =
        RunOptions::new().secret_value("mufasa", json!({ "username": "Mufasa", "password": "Circle of Life" }));
    let output = run_body(&body, json!({ "password": "Circle of Life" }), &options).await.unwrap();
    assert_eq!(output["md5"], json!({ "user": "Mufasa", "body": "{\"roar\":true}" }));
    assert_eq!(output["sha256"], "Mufasa");
    assert_eq!(output["legacy"], "Mufasa");
    // The echoed request shows neither the password nor the computed answer.
    let echoed = output["echoed"].to_string();
    assert!(!echoed.contains("Circle") && !echoed.to_lowercase().contains("authorization"), "{echoed}");
    // Each call: one unauthenticated attempt, then the answer; the body was sent both times.
    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 6);
    assert!(received[0].header("authorization").is_none());
    assert_eq!(received[1].body, "{\"roar\":true}");
    assert!(received[1].header("authorization").unwrap().contains("algorithm=MD5"));

    // A wrong password: the server challenges again, which is a communication error (401).
    let body = format!(
        "do:\n  - get: {{ call: http, with: {{ method: get, endpoint: {{ uri: '{}', authentication: {{ digest: {{ username: Mufasa, password: wrong-pw }} }} }} }} }}\n",
        server.url("/digest/md5")
    );
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!((error.type_.as_str(), error.status), (COMMUNICATION, 401));
    assert!(!error.to_string().contains("wrong-pw"), "{error}");
}

fn oauth2_policy(server: &Server, extra: &str) -> String {
    format!(
        "{{ authority: '{}', grant: client_credentials, client: {{ id: stigmer, secret: '{CLIENT_SECRET}'{extra} }}, scopes: [api, read], audiences: [runtime] }}",
        server.url("")
    )
}

#[tokio::test]
async fn oauth2_client_credentials_token_is_fetched_once_per_run_and_sent_as_bearer() {
    let server = Server::start().await;
    let body = format!(
        "
use:
  authentications:
    idp:
      oauth2: {policy}
do:
  - each:
      for: {{ in: '${{ [1, 2, 3] }}' }}
      do:
        - get:
            call: http
            with:
              method: get
              endpoint: {{ uri: '{url}', authentication: {{ use: idp }} }}
            output:
              as: '${{ ($input.seen // []) + [.authorization] | {{ seen: . }} }}'
",
        policy = oauth2_policy(&server, ""),
        url = server.url("/auth"),
    );
    let output = run_body(&body, json!({}), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!({ "seen": ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1"] }));
    let received = server.received.lock().unwrap().clone();
    let token_requests: Vec<&Received> = received.iter().filter(|r| r.target == "/oauth2/token").collect();
    assert_eq!(token_requests.len(), 1, "{received:?}");
    let token_request = token_requests[0];
    assert_eq!(token_request.method, "POST");
    assert_eq!(token_request.header("content-type"), Some("application/x-www-form-urlencoded"));
    // client_secret_post is the reference's default.
    assert_eq!(
        token_request.body,
        "grant_type=client_credentials&client_id=stigmer&client_secret=s3cr3t&scope=api%20read&audience=runtime"
    );
    assert!(token_request.header("authorization").is_none());

    // A new run fetches its own token.
    let output = run_body(&body, json!({}), &RunOptions::new()).await.unwrap();
    assert_eq!(output["seen"][0], "Bearer tok-2");
}

#[tokio::test]
async fn oauth2_client_secret_basic_password_grant_secrets_and_oidc_discovery() {
    let server = Server::start().await;
    let url = server.url("/auth");
    let body = format!(
        "
use:
  authentications:
    basicClient:
      oauth2: {basic}
    fromSecret:
      oauth2: {{ use: idp }}
    oidc:
      oidc: {{ authority: '{authority}', client: {{ id: stigmer, secret: '{CLIENT_SECRET}' }} }}
do:
  - basicClient:
      call: http
      with: {{ method: get, endpoint: {{ uri: '{url}', authentication: {{ use: basicClient }} }} }}
      output: {{ as: '${{ {{ basicClient: .authorization }} }}' }}
  - password:
      call: http
      with: {{ method: get, endpoint: {{ uri: '{url}', authentication: {{ use: fromSecret }} }} }}
      output: {{ as: '${{ $input + {{ password: .authorization }} }}' }}
  - oidc:
      call: http
      with: {{ method: get, endpoint: {{ uri: '{url}', authentication: {{ use: oidc }} }} }}
      output: {{ as: '${{ $input + {{ oidc: .authorization }} }}' }}
",
        basic = oauth2_policy(&server, ", authentication: client_secret_basic"),
        authority = server.url(""),
    );
    let options = RunOptions::new().secret_value(
        "idp",
        json!({
            "authority": server.url(""),
            "grant": "password",
            "username": "ada",
            "password": "lovelace",
            "client": { "id": "stigmer", "secret": CLIENT_SECRET },
        }),
    );
    let output = run_body(&body, json!(null), &options).await.unwrap();
    assert_eq!(output, json!({ "basicClient": "Bearer tok-1", "password": "Bearer tok-2", "oidc": "Bearer tok-3" }));
    let received = server.received.lock().unwrap().clone();
    let tokens: Vec<&Received> = received.iter().filter(|r| r.target == "/oauth2/token").collect();
    assert_eq!(tokens[0].body, "grant_type=client_credentials&scope=api%20read&audience=runtime");
    assert_eq!(tokens[0].header("authorization"), Some("Basic c3RpZ21lcjpzM2NyM3Q="));
    assert!(tokens[1].body.starts_with("grant_type=password&username=ada&password=lovelace&client_id=stigmer"));
    assert!(received.iter().any(|r| r.target == "/.well-known/openid-configuration"));
}

#[tokio::test]
async fn oauth2_refused_token_request_is_an_authentication_error_without_the_secret() {
    let server = Server::start().await;
    let body = format!(
        "do:\n  - get: {{ call: http, with: {{ method: get, endpoint: {{ uri: '{}', authentication: {{ oauth2: {{ authority: '{}', client: {{ id: stigmer, secret: not-the-s3cr3t }} }} }} }} }} }}\n",
        server.url("/auth"),
        server.url(""),
    );
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.type_, "https://serverlessworkflow.io/spec/1.0.0/errors/authentication");
    assert_eq!(error.status, 401);
    assert_eq!(error.instance.as_deref(), Some("/do/0/get"));
    let detail = error.detail.clone().unwrap();
    assert!(detail.contains(&server.url("/oauth2/token")) && detail.contains("invalid_client"), "{detail}");
    // The server echoed the secret back; the error does not.
    assert!(!error.to_string().contains("not-the-s3cr3t"), "{error}");
    // The API itself was never called.
    assert!(server.received.lock().unwrap().iter().all(|r| r.target != "/auth"));

    // An unreachable token endpoint is an authentication error too.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let body = format!(
        "do:\n  - get: {{ call: http, with: {{ method: get, endpoint: {{ uri: '{}', authentication: {{ oauth2: {{ authority: 'http://{addr}', client: {{ id: a, secret: b }} }} }} }} }} }}\n",
        server.url("/auth"),
    );
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!((error.kind(), error.status), ("authentication", 401));
    let detail = error.detail.unwrap();
    assert!(detail.contains("could not be reached"), "{detail}");
}

fn openapi_3_document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "pets", "version": "1" },
        "servers": [{ "url": "/{prefix}", "variables": { "prefix": { "default": "api" } } }],
        "components": {
            "parameters": { "trace": { "name": "X-Trace", "in": "header", "schema": { "type": "string" } } }
        },
        "paths": {
            "/pets/{petId}": {
                "parameters": [{ "name": "petId", "in": "path", "required": true, "schema": { "type": "integer" } }],
                "get": {
                    "operationId": "getPetById",
                    "parameters": [
                        { "name": "status", "in": "query", "schema": { "type": "string" } },
                        { "$ref": "#/components/parameters/trace" }
                    ],
                    "responses": { "200": { "description": "ok" } }
                }
            },
            "/echo": {
                "post": {
                    "operationId": "createPet",
                    "parameters": [{ "$ref": "#/components/parameters/trace" }],
                    "requestBody": { "required": true, "content": { "application/json": {} } },
                    "responses": { "200": { "description": "ok" } }
                }
            },
            "/auth": { "get": { "operationId": "whoAmI", "responses": { "200": { "description": "ok" } } } },
            "/redirect": { "get": { "operationId": "moved", "responses": { "302": { "description": "moved" } } } }
        }
    })
}

const SWAGGER_2_DOCUMENT: &str = "
swagger: '2.0'
info: { title: pets, version: '1' }
basePath: /api
paths:
  /pets/{petId}:
    get:
      operationId: getPetById
      parameters:
        - { name: petId, in: path, required: true, type: integer }
        - { name: status, in: query, type: array, items: { type: string }, collectionFormat: multi }
      responses:
        200: { description: ok }
  /echo:
    post:
      operationId: addPet
      parameters:
        - { name: pet, in: body, required: true, schema: { type: object } }
      responses:
        200: { description: ok }
";

#[tokio::test]
async fn openapi_call_resolves_an_openapi_3_operation_and_sends_it() {
    let server = Server::start().await;
    let body = format!(
        "
do:
  - getPet:
      call: openapi
      with:
        document: {{ endpoint: '{document}' }}
        operationId: getPetById
        parameters:
          petId: ${{ .id }}
          status: sold out
          X-Trace: t-1
      output: {{ as: '${{ {{ pet: . }} }}' }}
  - create:
      call: openapi
      with:
        document: {{ endpoint: {{ uri: '{document}' }} }}
        operationId: createPet
        parameters:
          name: ${{ .pet.id }}
          X-Trace: t-2
        output: response
      output: {{ as: '${{ $input + {{ created: .content, status: .statusCode, uri: .request.uri }} }}' }}
",
        document = server.url("/openapi.json"),
    );
    let output = run_body(&body, json!({ "id": 42 }), &RunOptions::new()).await.unwrap();
    assert_eq!(
        output,
        json!({
            "pet": { "id": "42", "query": "status=sold+out" },
            "created": { "name": "42" },
            "status": 200,
            "uri": server.url("/api/echo"),
        })
    );
    let received = server.received.lock().unwrap().clone();
    let targets: Vec<&str> = received.iter().map(|r| r.target.as_str()).collect();
    // The document is fetched once for the run.
    assert_eq!(targets, ["/openapi.json", "/api/pets/42?status=sold+out", "/api/echo"]);
    assert_eq!(received[1].header("x-trace"), Some("t-1"));
    assert_eq!(received[2].method, "POST");
    assert_eq!(received[2].header("content-type"), Some("application/json"));
    assert_eq!(received[2].header("x-trace"), Some("t-2"));

    // An unknown operation, and missing required parameters, are configuration errors.
    let call = |operation: &str, parameters: &str| {
        format!(
            "do:\n  - call: {{ call: openapi, with: {{ document: {{ endpoint: '{}' }}, operationId: {operation}, parameters: {parameters} }} }}\n",
            server.url("/openapi.json")
        )
    };
    let error = run_body(&call("deletePet", "{}"), json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.kind(), "configuration");
    assert_eq!(error.detail.unwrap(), format!("no operation `deletePet` in {}", server.url("/openapi.json")));
    let error = run_body(&call("createPet", "{ X-Trace: x }"), json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.kind(), "configuration");
    assert_eq!(error.detail.unwrap(), "`createPet` needs parameters `with.parameters` lacks: body");
}

#[tokio::test]
async fn openapi_call_reads_swagger_2_yaml_and_uses_authentication_redirect_and_raw() {
    let server = Server::start().await;
    let body = format!(
        "
do:
  - find:
      call: openapi
      with:
        document: {{ endpoint: '{swagger}' }}
        operationId: getPetById
        parameters: {{ petId: 7, status: [available, sold] }}
      output: {{ as: '${{ {{ found: . }} }}' }}
  - add:
      call: openapi
      with:
        document: {{ endpoint: '{swagger}' }}
        operationId: addPet
        parameters: {{ pet: {{ name: Rex }} }}
      output: {{ as: '${{ $input + {{ added: . }} }}' }}
  - whoAmI:
      call: openapi
      with:
        document: {{ endpoint: '{openapi}' }}
        operationId: whoAmI
        authentication: {{ bearer: {{ token: t0k3n }} }}
        output: raw
      output: {{ as: '${{ $input + {{ who: . }} }}' }}
  - moved:
      call: openapi
      with:
        document: {{ endpoint: '{openapi}' }}
        operationId: moved
        redirect: true
      output: {{ as: '${{ $input + {{ moved: . }} }}' }}
",
        swagger = server.url("/swagger.yaml"),
        openapi = server.url("/openapi.json"),
    );
    let output = run_body(&body, json!(null), &RunOptions::new()).await.unwrap();
    assert_eq!(output["found"], json!({ "id": "7", "query": "status=available&status=sold" }));
    assert_eq!(output["added"], json!({ "name": "Rex" }));
    assert_eq!(output["who"], json!(super::encode::base64(br#"{"authorization":"Bearer t0k3n"}"#)));
    assert_eq!(output["moved"], json!("hello"));

    // Without `redirect`, the 302 is a communication error.
    let body = format!(
        "do:\n  - moved: {{ call: openapi, with: {{ document: {{ endpoint: '{}' }}, operationId: moved }} }}\n",
        server.url("/openapi.json")
    );
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!((error.type_.as_str(), error.status), (COMMUNICATION, 302));

    // A document that is not there is a communication error saying so.
    let body = format!(
        "do:\n  - x: {{ call: openapi, with: {{ document: {{ endpoint: '{}' }}, operationId: x }} }}\n",
        server.url("/missing.json")
    );
    let error = run_body(&body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!((error.type_.as_str(), error.status), (COMMUNICATION, 404));
    assert!(error.detail.unwrap().starts_with("fetching the OpenAPI document failed"));
}

#[tokio::test]
async fn shell_passes_arguments_as_positional_parameters() {
    let body = r#"
do:
  - greet:
      run:
        shell:
          command: 'echo "$1-$2"; echo "name=$0"'
          arguments: [ hello, '${ .who }' ]
"#;
    let output = run_body(body, json!({ "who": "world; rm -rf /" }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!("hello-world; rm -rf /\nname=greet"));
}

#[tokio::test]
async fn shell_return_all_code_stderr_and_none() {
    let script = "echo out; echo err >&2; exit 3";
    let body = format!("do:\n  - sh: {{ run: {{ shell: {{ command: '{script}' }}, return: all }} }}\n");
    let output = run_body(&body, json!(null), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!({ "code": 3, "stdout": "out", "stderr": "err" }));
    let body = format!("do:\n  - sh: {{ run: {{ shell: {{ command: '{script}' }}, return: code }} }}\n");
    assert_eq!(run_body(&body, json!(null), &RunOptions::new()).await.unwrap(), json!(3));
    let body = "do:\n  - sh: { run: { shell: { command: 'true' }, return: code } }\n";
    assert_eq!(run_body(body, json!(null), &RunOptions::new()).await.unwrap(), json!(0));
    let body = "do:\n  - sh: { run: { shell: { command: 'echo oops >&2' }, return: stderr } }\n";
    assert_eq!(run_body(body, json!(null), &RunOptions::new()).await.unwrap(), json!("oops"));
    let body = "do:\n  - sh: { run: { shell: { command: 'echo x' }, return: none } }\n";
    assert_eq!(run_body(body, json!(null), &RunOptions::new()).await.unwrap(), json!(null));
}

#[tokio::test]
async fn shell_non_zero_exit_raises_a_runtime_error_a_catch_can_handle() {
    let body = "do:\n  - sh: { run: { shell: { command: 'echo out; echo boom >&2; exit 3' } } }\n";
    let error = run_body(body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.type_, RUNTIME);
    assert_eq!(error.instance.as_deref(), Some("/do/0/sh"));
    let detail = error.detail.unwrap();
    assert!(detail.contains("exited with code 3") && detail.contains("boom"), "{detail}");

    // A missing command: the shell says so and exits 127.
    let body = "
do:
  - attempt:
      try:
        - sh: { run: { shell: { command: stigmer-no-such-command-xyz } } }
      catch:
        do:
          - report: { set: { detail: '${ $error.detail }' } }
";
    let output = run_body(body, json!(null), &RunOptions::new()).await.unwrap();
    let detail = output["detail"].as_str().unwrap();
    assert!(detail.contains("exited with code 127") && detail.contains("not found"), "{detail}");
}

#[tokio::test]
async fn shell_environment_is_merged_over_the_runtime_one_and_stdin_is_fed() {
    let body = r#"
do:
  - sh:
      run:
        shell:
          command: 'echo "$GREETING $COUNT ${PATH:+inherited} ${STIGMER_UNSET_ME:-unset}"'
          environment:
            GREETING: ${ .greeting }
            COUNT: 5
            STIGMER_UNSET_ME: null
"#;
    let output = run_body(body, json!({ "greeting": "hi there" }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!("hi there 5 inherited unset"));

    let body = r#"
do:
  - sh:
      run:
        shell:
          command: 'input=$(cat); echo "STDIN was: $input"'
          stdin: ${ .message }
  - json:
      input: { from: '${ { a: 1 } }' }
      run:
        shell: { command: cat, stdin: '${ . }' }
      output: { as: '${ { raw: . } }' }
"#;
    let output = run_body(body, json!({ "message": "Hello World" }), &RunOptions::new()).await.unwrap();
    assert_eq!(output["raw"], json!("{\"a\":1}"));
    let body = "do:\n  - sh: { run: { shell: { command: 'input=$(cat); echo \"STDIN was: $input\"', stdin: '${ .message }' } } }\n";
    let output = run_body(body, json!({ "message": "Hello World" }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!("STDIN was: Hello World"));
}

#[tokio::test]
async fn shell_timeout_kills_the_process_and_await_false_does_not_wait() {
    let started = Instant::now();
    let body = "do:\n  - sh: { run: { shell: { command: 'sleep 5' } }, timeout: { after: PT0.2S } }\n";
    let error = run_body(body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.kind(), "timeout");
    assert!(started.elapsed() < Duration::from_secs(3));

    let started = Instant::now();
    let body = "do:\n  - sh: { run: { shell: { command: 'sleep 5' }, await: false } }\n";
    let output = run_body(body, json!({ "kept": true }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!({ "kept": true }));
    assert!(started.elapsed() < Duration::from_secs(3));
}

async fn available(program: &str) -> bool {
    tokio::process::Command::new(program).arg("--version").output().await.is_ok_and(|output| output.status.success())
}

#[tokio::test]
async fn python_scripts_get_arguments_environment_and_stdin() {
    if !available("python3").await {
        println!("skipped: python3 is not on PATH");
        return;
    }
    let body = r#"
do:
  - py:
      run:
        script:
          language: python
          code: |
            import os, sys
            print(sys.argv[1], sys.argv[2], os.environ["SUFFIX"], sys.stdin.read())
          arguments: [ a, '${ .b }' ]
          environment: { SUFFIX: '!' }
          stdin: ${ .in }
"#;
    let output = run_body(body, json!({ "b": "bee", "in": "piped" }), &RunOptions::new()).await.unwrap();
    assert_eq!(output, json!("a bee ! piped"));
    let body =
        "do:\n  - py: { run: { script: { language: python, code: 'import sys; sys.exit(4)' }, return: code } }\n";
    assert_eq!(run_body(body, json!(null), &RunOptions::new()).await.unwrap(), json!(4));
}

#[tokio::test]
async fn js_scripts_see_arguments_from_argv_2() {
    if !available("node").await {
        println!("skipped: node is not on PATH");
        return;
    }
    let body = r"
do:
  - js:
      run:
        script:
          language: js
          arguments: [ hello, world ]
          code: |
            const [_, __, arg0, arg1] = process.argv;
            console.log(arg0, arg1)
";
    assert_eq!(run_body(body, json!(null), &RunOptions::new()).await.unwrap(), json!("hello world"));
}

#[tokio::test]
async fn unknown_script_languages_and_missing_interpreters_are_clear_errors() {
    let body = "do:\n  - rb: { run: { script: { language: ruby, code: 'puts 1' } } }\n";
    let error = run_body(body, json!(null), &RunOptions::new()).await.unwrap_err();
    assert_eq!(error.kind(), "configuration");
    assert!(error.detail.unwrap().contains("\"ruby\" is not supported"));

    let spawn = process::Spawn {
        program: "stigmer-no-such-interpreter".to_owned(),
        arguments: Vec::new(),
        environment: Vec::new(),
        stdin: None,
        what: "the python script".to_owned(),
    };
    let error = process::run(spawn, dsl::ProcessReturnType::Stdout, "/do/0/py").await.unwrap_err();
    assert_eq!(error.type_, RUNTIME);
    assert_eq!(
        error.detail.as_deref(),
        Some("the python script needs `stigmer-no-such-interpreter`, which was not found on PATH")
    );
}

#[tokio::test]
async fn a_resumed_run_sends_a_call_that_never_completed_and_not_one_that_did() {
    let server = Server::start().await;
    let url = server.url("/pets/1");
    // `first` completed before the runner stopped; `second` was in flight: at least once per
    // task, it is sent again, and `first` is not.
    let body = format!(
        "do:\n  - first:\n      call: http\n      with: {{ method: get, endpoint: '{url}' }}\n  \
         - second:\n      call: http\n      with: {{ method: get, endpoint: '{url}' }}\n"
    );
    let options = RunOptions::new().replaying([("/do/0/first".to_owned(), json!({ "id": "recorded" }))]);
    assert_eq!(run_body(&body, json!({}), &options).await.unwrap()["id"], "1");
    assert_eq!(server.received.lock().unwrap().len(), 1, "only the call in flight was sent");
}

#[tokio::test]
async fn a_script_source_is_read_from_a_file_or_fetched_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("greet.py");
    std::fs::write(&script, "import sys\nprint('hello ' + sys.argv[1])\n").unwrap();
    for endpoint in [script.display().to_string(), format!("file://{}", script.display())] {
        let body = format!(
            "do:\n  - greet:\n      run:\n        script: {{ language: python, source: {{ endpoint: '{endpoint}' }}, arguments: [ada] }}\n"
        );
        assert_eq!(run_body(&body, json!({}), &RunOptions::new()).await.unwrap(), json!("hello ada"));
    }
    let server = Server::start().await;
    let body = format!(
        "do:\n  - greet:\n      run:\n        script: {{ language: python, source: {{ endpoint: '{}' }} }}\n",
        server.url("/script.py")
    );
    assert_eq!(run_body(&body, json!({}), &RunOptions::new()).await.unwrap(), json!("from the web"));
    let missing =
        "do:\n  - greet:\n      run:\n        script: { language: python, source: { endpoint: /no/such/script.py } }\n";
    let error = run_body(missing, json!({}), &RunOptions::new()).await.unwrap_err();
    assert_eq!((error.kind(), error.instance.as_deref()), ("runtime", Some("/do/0/greet")));
    assert!(error.detail.unwrap().contains("cannot read the script at /no/such/script.py"));
}
