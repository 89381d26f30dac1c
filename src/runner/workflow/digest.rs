//! HTTP digest authentication (RFC 7616, and RFC 2617's form without `qop`): reads a server's
//! `WWW-Authenticate: Digest …` challenge and computes the `Authorization` header that answers
//! it. Pure: the exchange (send, read the 401, send once more) belongs to `http`.
//!
//! Supported: algorithms `MD5`, `SHA-256` and `SHA-512-256` with their `-sess` variants; `qop`
//! `auth` (preferred) and `auth-int`, or none. Not supported: `userhash` (the username is sent
//! as it is) and RFC 7616's `username*` for usernames a quoted string cannot carry.

use std::fmt::Write as _;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// The hash a challenge asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Self::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
            Self::Sha512_256 => hex::encode(Sha512_256::digest(data.as_bytes())),
        }
    }

    fn hash_bytes(self, data: &[u8]) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(data)),
            Self::Sha256 => hex::encode(Sha256::digest(data)),
            Self::Sha512_256 => hex::encode(Sha512_256::digest(data)),
        }
    }
}

/// The quality of protection a challenge offers, in our order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qop {
    Auth,
    AuthInt,
}

/// A digest challenge this module can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    /// The `algorithm` parameter as the server wrote it (echoed back as it is).
    algorithm_name: Option<String>,
    algorithm: Algorithm,
    session: bool,
    /// `None`: the RFC 2069 / 2617 legacy computation without `cnonce` and `nc`.
    qop: Option<Qop>,
}

/// What the answer is computed from, besides the challenge.
pub(crate) struct Answer<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// The request method, upper case.
    pub method: &'a str,
    /// The request target: path and query.
    pub uri: &'a str,
    /// The request body (for `qop=auth-int`).
    pub body: &'a [u8],
    /// A fresh client nonce.
    pub cnonce: &'a str,
}

/// The first digest challenge among `headers` (the `WWW-Authenticate` values) whose algorithm
/// and quality of protection are supported.
pub(crate) fn challenge<'h>(headers: impl IntoIterator<Item = &'h str>) -> Option<Challenge> {
    headers.into_iter().flat_map(parse_challenges).filter(|(scheme, _)| scheme.eq_ignore_ascii_case("digest")).find_map(
        |(_, params)| {
            let param = |name: &str| {
                params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
            };
            let algorithm_name = param("algorithm");
            let (algorithm, session) = match algorithm_name.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("MD5") => (Algorithm::Md5, false),
                Some("MD5-SESS") => (Algorithm::Md5, true),
                Some("SHA-256") => (Algorithm::Sha256, false),
                Some("SHA-256-SESS") => (Algorithm::Sha256, true),
                Some("SHA-512-256") => (Algorithm::Sha512_256, false),
                Some("SHA-512-256-SESS") => (Algorithm::Sha512_256, true),
                Some(_) => return None,
            };
            let qop = match param("qop") {
                None => None,
                Some(offered) => {
                    let offered: Vec<String> = offered.split(',').map(|qop| qop.trim().to_ascii_lowercase()).collect();
                    if offered.iter().any(|qop| qop == "auth") {
                        Some(Qop::Auth)
                    } else if offered.iter().any(|qop| qop == "auth-int") {
                        Some(Qop::AuthInt)
                    } else {
                        return None;
                    }
                }
            };
            Some(Challenge {
                realm: param("realm").unwrap_or_default(),
                nonce: param("nonce")?,
                opaque: param("opaque"),
                algorithm_name,
                algorithm,
                session,
                qop,
            })
        },
    )
}

/// The value of the `Authorization` header answering `challenge` (nonce count 1).
pub(crate) fn authorization(challenge: &Challenge, answer: &Answer<'_>) -> String {
    let hash = |data: &str| challenge.algorithm.hash(data);
    let mut ha1 = hash(&format!("{}:{}:{}", answer.username, challenge.realm, answer.password));
    if challenge.session {
        ha1 = hash(&format!("{ha1}:{}:{}", challenge.nonce, answer.cnonce));
    }
    let ha2 = match challenge.qop {
        Some(Qop::AuthInt) => {
            hash(&format!("{}:{}:{}", answer.method, answer.uri, challenge.algorithm.hash_bytes(answer.body)))
        }
        _ => hash(&format!("{}:{}", answer.method, answer.uri)),
    };
    let nc = "00000001";
    let qop = match challenge.qop {
        Some(Qop::Auth) => Some("auth"),
        Some(Qop::AuthInt) => Some("auth-int"),
        None => None,
    };
    let response = match qop {
        Some(qop) => hash(&format!("{ha1}:{}:{nc}:{}:{qop}:{ha2}", challenge.nonce, answer.cnonce)),
        None => hash(&format!("{ha1}:{}:{ha2}", challenge.nonce)),
    };
    let mut header = format!(
        "Digest username={}, realm={}, nonce={}, uri={}",
        quoted(answer.username),
        quoted(&challenge.realm),
        quoted(&challenge.nonce),
        quoted(answer.uri)
    );
    if let Some(algorithm) = &challenge.algorithm_name {
        let _ = write!(header, ", algorithm={algorithm}");
    }
    let _ = write!(header, ", response={}", quoted(&response));
    if let Some(qop) = qop {
        let _ = write!(header, ", qop={qop}, nc={nc}, cnonce={}", quoted(answer.cnonce));
    }
    if let Some(opaque) = &challenge.opaque {
        let _ = write!(header, ", opaque={}", quoted(opaque));
    }
    header
}

/// A fresh client nonce: 16 random bytes in hex.
pub(crate) fn cnonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: a cnonce need only be unlikely to repeat, which the clock gives.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes = now.as_nanos().to_le_bytes();
    }
    hex::encode(bytes)
}

/// An RFC 9110 quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The challenges of one `WWW-Authenticate` value: `scheme name=value, name="value", Other …`,
/// each with its parameters (names as written, values unquoted). Tolerant: whatever does not
/// parse ends the current challenge.
fn parse_challenges(header: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut challenges: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let (scheme, after) = token(rest);
        if scheme.is_empty() {
            break;
        }
        rest = after;
        let mut params = Vec::new();
        loop {
            let before = rest;
            let trimmed = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
            let (name, after) = token(trimmed);
            let after = after.trim_start();
            let Some(value_start) = after.strip_prefix('=').filter(|_| !name.is_empty()) else {
                rest = before;
                break;
            };
            let value_start = value_start.trim_start();
            let (value, after) = if let Some(quoted) = value_start.strip_prefix('"') {
                quoted_string(quoted)
            } else {
                let (value, after) = token(value_start);
                (value.to_owned(), after)
            };
            params.push((name.to_owned(), value));
            rest = after;
        }
        challenges.push((scheme.to_owned(), params));
        if starts_challenge(rest) {
            continue;
        }
        // A token68 or anything else unparsed: skip to the next comma.
        match rest.find(',') {
            Some(comma) => rest = &rest[comma + 1..],
            None => break,
        }
    }
    challenges
}

/// Whether `text` (after spaces and commas) starts a new challenge: a token not followed by `=`.
fn starts_challenge(text: &str) -> bool {
    let text = text.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
    let (name, after) = token(text);
    !name.is_empty() && !after.trim_start().starts_with('=')
}

/// The RFC 9110 token at the start of `text`, and what follows it.
fn token(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))).unwrap_or(text.len());
    text.split_at(end)
}

/// The rest of a quoted string whose opening quote is consumed: its unescaped value and what
/// follows the closing quote (everything, when it is not closed).
fn quoted_string(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, &text[at + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            other => value.push(other),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer<'a>(method: &'a str, uri: &'a str, cnonce: &'a str, password: &'a str) -> Answer<'a> {
        Answer { username: "Mufasa", password, method, uri, body: b"", cnonce }
    }

    fn param<'h>(header: &'h str, name: &str) -> &'h str {
        let start = header.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = &header[start..];
        match rest.strip_prefix('"') {
            Some(quoted) => &quoted[..quoted.find('"').unwrap()],
            None => rest.split(',').next().unwrap(),
        }
    }

    #[test]
    fn rfc_2617_md5_auth_vector() {
        let challenge = challenge(["Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""])
        .unwrap();
        let header = authorization(&challenge, &answer("GET", "/dir/index.html", "0a4f113b", "Circle Of Life"));
        assert_eq!(param(&header, "response"), "6629fae49393a05397450978507c4ef1");
        assert_eq!(param(&header, "qop"), "auth");
        assert_eq!(param(&header, "nc"), "00000001");
        assert_eq!(param(&header, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
        assert!(!header.contains("algorithm="), "{header}");
    }

    #[test]
    fn rfc_7616_sha_256_and_md5_vectors() {
        let header = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
                      nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                      opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", \
                      Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
                      nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                      opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let sha = challenge([header]).unwrap();
        let sha_header = authorization(&sha, &answer("GET", "/dir/index.html", cnonce, "Circle of Life"));
        assert_eq!(param(&sha_header, "response"), "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
        assert_eq!(param(&sha_header, "algorithm"), "SHA-256");

        // The second challenge of the same header, on its own.
        let md5_only = &header[header.rfind("Digest").unwrap()..];
        let md5 = challenge(["Basic realm=\"x\"", md5_only]).unwrap();
        let md5_header = authorization(&md5, &answer("GET", "/dir/index.html", cnonce, "Circle of Life"));
        assert_eq!(param(&md5_header, "response"), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn legacy_challenges_without_qop_hash_nonce_and_ha2_only() {
        let challenge = challenge(["Digest realm=\"r\", nonce=\"n\""]).unwrap();
        let header = authorization(&challenge, &answer("GET", "/x?y=1", "c", "pw"));
        let ha1 = Algorithm::Md5.hash("Mufasa:r:pw");
        let ha2 = Algorithm::Md5.hash("GET:/x?y=1");
        assert_eq!(param(&header, "response"), Algorithm::Md5.hash(&format!("{ha1}:n:{ha2}")));
        assert!(!header.contains("cnonce") && !header.contains("nc="), "{header}");
    }

    #[test]
    fn unsupported_challenges_are_skipped_and_garbage_does_not_loop() {
        assert_eq!(challenge(["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1"]), None);
        assert_eq!(challenge(["Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\""]), None);
        assert_eq!(challenge(["Digest realm=\"r\""]), None);
        assert_eq!(challenge(["Bearer realm=\"r\""]), None);
        for garbage in ["", "=", ",,,", "Negotiate abc==, Digest", "Digest nonce=\"unterminated", "Digest =x, y"] {
            let _ = challenge([garbage]);
        }
        let found = challenge(["Negotiate abc==, Digest realm=\"a\\\"b\", nonce=n1"]).unwrap();
        assert_eq!((found.realm.as_str(), found.nonce.as_str()), ("a\"b", "n1"));
    }

    #[test]
    fn quoted_values_are_escaped_and_cnonces_differ() {
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_ne!(cnonce(), cnonce());
        assert_eq!(cnonce().len(), 32);
    }
}
