//! Authentication policies: references to reusable policies, and the basic, bearer, digest,
//! OAuth2 and OpenID Connect schemes with their inline or secret-based configurations.

// Doc comments are the JSON Schema descriptions editors show: product names (OAuth2, OpenAPI,
// AsyncAPI, CloudEvents) are written as prose, not code.
#![allow(clippy::doc_markdown, reason = "doc comments double as schema descriptions")]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::support::{self, deserialize_by_key};

/// An authentication policy: a reference to one declared in `use.authentications`, or inline.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum ReferenceableAuthenticationPolicy {
    /// A reference to a policy declared in `use.authentications`.
    Reference(AuthenticationPolicyReference),
    /// An inline policy.
    Policy(AuthenticationPolicy),
}
deserialize_by_key!(ReferenceableAuthenticationPolicy, ["use" => Reference], else Policy);

impl ReferenceableAuthenticationPolicy {
    /// A reference to the policy declared as `name` in `use.authentications`.
    #[must_use]
    pub fn reference(name: impl Into<String>) -> Self {
        Self::Reference(AuthenticationPolicyReference { use_: name.into() })
    }
}

/// A reference to an authentication policy declared in `use.authentications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationPolicyReference {
    /// The name of the authentication policy to use.
    #[serde(rename = "use")]
    #[schemars(length(min = 1))]
    pub use_: String,
}

/// An authentication policy, by scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthenticationPolicy {
    /// HTTP basic authentication.
    Basic(BasicAuthentication),
    /// Bearer token authentication.
    Bearer(BearerAuthentication),
    /// HTTP digest authentication.
    Digest(DigestAuthentication),
    /// OAuth2 authentication.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Authentication),
    /// OpenID Connect authentication.
    Oidc(OidcAuthentication),
}

/// Credentials read from a secret declared in `use.secrets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretBasedAuthenticationPolicy {
    /// The name of the secret holding the credentials.
    #[serde(rename = "use")]
    #[schemars(length(min = 1))]
    pub use_: String,
}

/// Defines an enum "inline configuration, or `{use: secret}`" for one authentication scheme.
macro_rules! secret_or_inline {
    ($(#[$meta:meta])* $name:ident($inline:ty)) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
        #[serde(rename_all = "camelCase", untagged)]
        pub enum $name {
            /// The credentials, read from a secret.
            Secret(SecretBasedAuthenticationPolicy),
            /// The credentials, written inline.
            Inline($inline),
        }
        deserialize_by_key!($name, ["use" => Secret], else Inline);
    };
}

secret_or_inline! {
    /// The configuration of a basic authentication: inline credentials or a secret.
    BasicAuthentication(UsernamePassword)
}

secret_or_inline! {
    /// The configuration of a bearer authentication: an inline token or a secret.
    BearerAuthentication(BearerToken)
}

secret_or_inline! {
    /// The configuration of a digest authentication: inline credentials or a secret.
    DigestAuthentication(UsernamePassword)
}

// The OAuth2 and OIDC properties are boxed: inline, they made every endpoint, and so every
// task, hundreds of bytes larger.
secret_or_inline! {
    /// The configuration of an OAuth2 authentication: inline properties or a secret.
    OAuth2Authentication(Box<OAuth2Properties>)
}

secret_or_inline! {
    /// The configuration of an OpenID Connect authentication: inline properties or a secret.
    OidcAuthentication(Box<OAuth2Properties>)
}

/// A username and password (basic and digest authentication).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsernamePassword {
    /// The username to use.
    pub username: String,
    /// The password to use.
    pub password: String,
}

/// A bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BearerToken {
    /// The bearer token to use (often a runtime expression).
    pub token: String,
}

/// The inline configuration of an OAuth2 or OpenID Connect authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Properties {
    /// The URI of the OAuth2 authority to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "support::uri_template_schema")]
    pub authority: Option<String>,
    /// The grant type to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<OAuth2Grant>,
    /// The OAuth2 client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<OAuth2Client>,
    /// The configuration of the token request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<OAuth2TokenRequest>,
    /// The issuers accepted when checking the issuer of generated tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<String>,
    /// The scopes, if any, to request the token for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The audiences, if any, to request the token for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// The username to use; only for the `password` grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password to use; only for the `password` grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The token of the party on behalf of whom the request is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<OAuth2Token>,
    /// The token of the acting party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<OAuth2Token>,
    /// The paths of the OAuth2 endpoints (OAuth2 only, not OpenID Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<OAuth2Endpoints>,
}

/// An OAuth2 grant type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OAuth2Grant {
    /// `authorization_code`.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// `client_credentials`.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// `password`.
    #[serde(rename = "password")]
    Password,
    /// `refresh_token`.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// An OAuth2 client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Client {
    /// The client id; required unless the client authentication method is `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The client secret, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A JWT with a signed assertion of the client's credentials (for `private_key_jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<String>,
    /// The client authentication method; defaults to `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<OAuth2ClientAuthentication>,
}

/// An OAuth2 client authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OAuth2ClientAuthentication {
    /// `client_secret_basic`.
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    /// `client_secret_post`.
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
    /// `client_secret_jwt`.
    #[serde(rename = "client_secret_jwt")]
    ClientSecretJwt,
    /// `private_key_jwt`.
    #[serde(rename = "private_key_jwt")]
    PrivateKeyJwt,
    /// `none`.
    #[serde(rename = "none")]
    None,
}

/// The configuration of an OAuth2 token request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2TokenRequest {
    /// The encoding of the token request; defaults to `application/x-www-form-urlencoded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<OAuth2TokenRequestEncoding>,
}

/// The encoding of an OAuth2 token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OAuth2TokenRequestEncoding {
    /// `application/x-www-form-urlencoded`.
    #[serde(rename = "application/x-www-form-urlencoded")]
    FormUrlEncoded,
    /// `application/json`.
    #[serde(rename = "application/json")]
    Json,
}

/// An OAuth2 security token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Token {
    /// The security token.
    pub token: String,
    /// The type of the security token.
    #[serde(rename = "type")]
    pub type_: String,
}

/// The paths of the OAuth2 endpoints, relative to the authority.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Endpoints {
    /// The token endpoint; defaults to `/oauth2/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The revocation endpoint; defaults to `/oauth2/revoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<String>,
    /// The introspection endpoint; defaults to `/oauth2/introspect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<String>,
}
