//! Settings resolved once, from flags > environment > defaults, into the value commands receive.
//! Environment variable names are declared here and nowhere else.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::CommandError;
use super::config::{Config, Context};
use crate::cli::backend::AnyBackend;
use crate::manifest::Project;
use crate::remote::{RemoteBackend, RemoteOptions};
use crate::secrets::KeySource;
use crate::store::redb::LocalBackend;

/// `NO_COLOR`: when set to anything non-empty, no colors (<https://no-color.org>).
pub const ENV_NO_COLOR: &str = "NO_COLOR";
/// `STIGMER_HOME`: where stigmer keeps its store and configuration (default `~/.stigmer`).
pub const ENV_HOME: &str = "STIGMER_HOME";
/// `STIGMER_LOCK_WAIT`: seconds to wait for another stigmer process holding the local store.
pub const ENV_LOCK_WAIT: &str = "STIGMER_LOCK_WAIT";
/// `STIGMER_ENDPOINT`: a server to use, overriding every context (for CI).
pub const ENV_ENDPOINT: &str = "STIGMER_ENDPOINT";
/// `STIGMER_TOKEN`: the API token for `STIGMER_ENDPOINT`.
pub const ENV_TOKEN: &str = "STIGMER_TOKEN";
/// `STIGMER_ORG`: the org to act in on `STIGMER_ENDPOINT`.
pub const ENV_ORG: &str = "STIGMER_ORG";
/// `STIGMER_CA_CERT`: a PEM CA certificate to trust for `STIGMER_ENDPOINT`.
pub const ENV_CA_CERT: &str = "STIGMER_CA_CERT";
/// `STIGMER_LOG`: what `stigmer server` logs (a tracing filter; `info` by default).
pub const ENV_LOG: &str = "STIGMER_LOG";
/// `STIGMER_STORE_URL`: the PostgreSQL database `stigmer server` keeps its data in, when
/// `--store` names none.
pub const ENV_STORE_URL: &str = "STIGMER_STORE_URL";

/// The database a server command uses: `--store`, else `STIGMER_STORE_URL`; `None` for the
/// data directory.
pub fn store_url(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_owned).or_else(|| std::env::var(ENV_STORE_URL).ok()).filter(|url| !url.is_empty())
}
/// `USER` / `USERNAME`: the local actor recorded in revisions and the audit log.
const ENV_USER: [&str; 2] = ["USER", "USERNAME"];

/// When to color output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Color when writing to a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// When to use colors.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// stigmer's home directory, for its store and configuration (else `STIGMER_HOME`, else ~/.stigmer)
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The context to use instead of the current one (see `stigmer context list`)
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

/// A server named by the environment (`STIGMER_ENDPOINT` and friends).
#[derive(Clone, PartialEq, Eq)]
struct EnvServer {
    endpoint: String,
    token: Option<String>,
    org: Option<String>,
    ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for EnvServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvServer").field("endpoint", &self.endpoint).field("org", &self.org).finish_non_exhaustive()
    }
}

/// Resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Color standard output.
    pub color_stdout: bool,
    /// Color standard error.
    pub color_stderr: bool,
    /// Whether standard error is a terminal (for progress output).
    pub interactive: bool,
    /// stigmer's home directory.
    pub home: PathBuf,
    /// The local actor.
    pub actor: String,
    /// How long to wait for another process holding the local store.
    pub lock_wait: Duration,
    /// `--context NAME`.
    pub context: Option<String>,
    /// A server named by the environment, which overrides every context.
    env_server: Option<EnvServer>,
    /// The local store's master key: `STIGMER_MASTER_KEY`, else `master.key` in the home.
    pub master_key: KeySource,
}

impl Settings {
    /// Resolves settings from the flags and the process environment.
    #[must_use]
    pub fn resolve(args: &GlobalArgs) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let no_color = var(ENV_NO_COLOR).is_some();
        let decide = |is_terminal: bool| match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        let home =
            args.home.clone().or_else(|| var(ENV_HOME).map(PathBuf::from)).unwrap_or_else(|| {
                std::env::home_dir().map_or_else(|| PathBuf::from(".stigmer"), |h| h.join(".stigmer"))
            });
        let actor = ENV_USER.iter().find_map(|name| var(name)).unwrap_or_else(|| "local".to_owned());
        let lock_wait = var(ENV_LOCK_WAIT).and_then(|s| s.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
        let master_key = KeySource::from_env_or_file(home.join("master.key"));
        Self {
            master_key,
            color_stdout: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(std::io::stderr().is_terminal()),
            interactive: std::io::stderr().is_terminal(),
            home,
            actor,
            lock_wait: lock_wait.map_or(Duration::from_secs(10), Duration::from_secs_f64),
            context: args.context.clone(),
            env_server: var(ENV_ENDPOINT).map(|endpoint| EnvServer {
                endpoint,
                token: var(ENV_TOKEN),
                org: var(ENV_ORG),
                ca_cert: var(ENV_CA_CERT).map(PathBuf::from),
            }),
        }
    }

    /// The context commands use: `STIGMER_ENDPOINT` (with `STIGMER_TOKEN`, `STIGMER_ORG`) over
    /// `--context` over the configuration file's current context over the local store.
    ///
    /// # Errors
    /// The configuration cannot be read, or names a context that does not exist.
    pub fn context(&self) -> Result<Context, CommandError> {
        self.context_for(None)
    }

    /// [`Settings::context`] for a command that read a project: the project's `context:` comes
    /// after `--context` and before the configuration file's current context.
    fn context_for(&self, project: Option<&Project>) -> Result<Context, CommandError> {
        if let Some(env) = &self.env_server {
            let token = env.token.clone().ok_or_else(|| {
                CommandError::user(format!("{ENV_ENDPOINT} is set but {ENV_TOKEN} is not"))
                    .hint(format!("set {ENV_TOKEN} to an API token made with `stigmer server token create`"))
            })?;
            return Ok(Context {
                name: ENV_ENDPOINT.to_owned(),
                endpoint: Some(env.endpoint.clone()),
                org: env.org.clone(),
                token: Some(super::config::Secret(token)),
                ca_cert: env.ca_cert.clone(),
            });
        }
        let config = Config::load(&self.home)?;
        let from_project = project.and_then(|p| p.context.as_deref());
        let name = self.context.as_deref().or(from_project).unwrap_or_else(|| config.current());
        config.context(name).ok_or_else(|| {
            let known: Vec<String> = std::iter::once(super::config::LOCAL_CONTEXT.to_owned())
                .chain(config.contexts.iter().map(|c| c.name.clone()))
                .collect();
            let named_by = if self.context.is_none() && from_project.is_some() {
                " (named by the project's stigmer.yaml)"
            } else {
                ""
            };
            CommandError::user(format!("there is no context named {name:?}{named_by}"))
                .hint(format!("contexts: {}; add one with `stigmer login`", known.join(", ")))
        })
    }

    /// The local store under the home directory.
    #[must_use]
    pub fn local_backend(&self) -> LocalBackend {
        // Said once per process, however many operations of the command wait.
        static TOLD: std::sync::Once = std::sync::Once::new();
        let path = self.home.join("local.db");
        let wait = self.lock_wait;
        let notice = crate::store::redb::WaitNotice::new(move |holder| {
            TOLD.call_once(|| {
                let holder = holder.unwrap_or("another stigmer process");
                eprintln!(
                    "waiting for {}: {holder} has it open (for up to {} s; {ENV_LOCK_WAIT} sets how long)",
                    path.display(),
                    wait.as_secs_f64()
                );
            });
        });
        LocalBackend::new(self.home.join("local.db"), self.actor.clone())
            .with_wait(self.lock_wait)
            .with_key(self.master_key.clone())
            .on_wait(notice)
    }

    /// The backend the commands use: the local store or the server the context names.
    ///
    /// # Errors
    /// As [`Settings::context`], or a remote context without a token or with an unusable endpoint.
    pub fn backend(&self) -> Result<AnyBackend, CommandError> {
        self.backend_for(None)
    }

    /// The backend for a command that read a project, whose `context:` may name one.
    ///
    /// # Errors
    /// As [`Settings::backend`].
    pub fn backend_for(&self, project: Option<&Project>) -> Result<AnyBackend, CommandError> {
        let context = self.context_for(project)?;
        remote_backend(&context)
            .map(|remote| remote.map_or_else(|| AnyBackend::Local(self.local_backend()), AnyBackend::Remote))
    }
}

/// The largest CA certificate file read (a bundle of many certificates fits).
const MAX_CA_CERT_BYTES: u64 = 1024 * 1024;

/// The remote backend a context names, or `None` for the local store.
///
/// # Errors
/// A server context without a token, an unreadable CA certificate or an unusable endpoint.
pub fn remote_backend(context: &Context) -> Result<Option<RemoteBackend>, CommandError> {
    let Some(endpoint) = &context.endpoint else { return Ok(None) };
    let token = context.token.as_ref().ok_or_else(|| {
        CommandError::user(format!("context {:?} has no token", context.name))
            .hint(format!("log in again with `stigmer login --endpoint {endpoint}`"))
    })?;
    let ca_cert = match &context.ca_cert {
        Some(path) => {
            let pem = super::common::read_file(path, MAX_CA_CERT_BYTES, "--ca-cert")?;
            if !crate::manifest::file::pem_labels(&pem).iter().any(|label| label == "CERTIFICATE") {
                return Err(CommandError::user(format!("{} holds no PEM certificate", path.display()))
                    .hint("--ca-cert takes a PEM file holding -----BEGIN CERTIFICATE-----"));
            }
            Some(pem)
        }
        None => None,
    };
    let options =
        RemoteOptions { endpoint: endpoint.clone(), token: token.0.clone(), org: context.org.clone(), ca_cert };
    Ok(Some(RemoteBackend::new(&options)?))
}
