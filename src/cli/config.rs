//! `$STIGMER_HOME/config.yaml`: the contexts — the local store, or a server's endpoint with an
//! org and a token — and which one is current. The file holds tokens, so it is written with mode
//! 0600, atomically (temp file + rename); tokens never appear in output or debug text.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::runner::agent::usage::Prices;
use serde::{Deserialize, Serialize};

use super::CommandError;

/// The context that always exists: the local store.
pub const LOCAL_CONTEXT: &str = "local";

/// A token: serialized as itself into the config file, shown as `***` everywhere else.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where commands send their work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// How people pick it: `--context NAME`, `stigmer context use NAME`.
    pub name: String,
    /// The server's URL; none for the local store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The org to act in on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The API token for the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// A PEM CA certificate to trust for the server's TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

impl Context {
    /// The local store's context.
    pub fn local() -> Self {
        Self { name: LOCAL_CONTEXT.to_owned(), endpoint: None, org: None, token: None, ca_cert: None }
    }
}

/// The configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The context commands use when neither `--context` nor the environment names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// Every saved context (the local one is implicit).
    #[serde(default)]
    pub contexts: Vec<Context>,
    /// What each model costs per million tokens (`{input, output, cached}`), for the cost
    /// `usage` and `execution get` show and for agents' `maxCost`.
    #[serde(default, alias = "model_prices", skip_serializing_if = "Prices::is_empty")]
    pub model_prices: Prices,
}

impl Config {
    /// The file under a home directory.
    pub fn path(home: &Path) -> PathBuf {
        home.join("config.yaml")
    }

    /// Reads the file; a missing file is an empty configuration.
    pub fn load(home: &Path) -> Result<Self, CommandError> {
        let path = Self::path(home);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(CommandError::io(&format!("cannot read {}", path.display()), e)),
        };
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_saphyr::from_str(&text).map_err(|e| {
            CommandError::user(format!("{} is not a valid configuration: {e}", path.display()))
                .hint("fix the file, or remove it and log in again with `stigmer login`")
        })
    }

    /// Writes the file, readable by its owner only, replacing the old one at once.
    pub fn save(&self, home: &Path) -> Result<(), CommandError> {
        let path = Self::path(home);
        let text = serde_saphyr::to_string(self)
            .map_err(|e| CommandError::user(format!("cannot write the configuration: {e}")))?;
        let io = |e| CommandError::io(&format!("cannot write {}", path.display()), e);
        crate::private_fs::create_private_dir(home).map_err(io)?;
        let temp = path.with_extension("yaml.tmp");
        let mut file = crate::private_fs::private_file(&temp).map_err(io)?;
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
        std::fs::rename(&temp, &path).map_err(io)
    }

    /// The context by name; `local` exists even when the file does not mention it.
    pub fn context(&self, name: &str) -> Option<Context> {
        self.contexts.iter().find(|c| c.name == name).cloned().or_else(|| (name == LOCAL_CONTEXT).then(Context::local))
    }

    /// The current context's name.
    pub fn current(&self) -> &str {
        self.current_context.as_deref().unwrap_or(LOCAL_CONTEXT)
    }

    /// Adds or replaces a context.
    pub fn upsert(&mut self, context: Context) {
        match self.contexts.iter_mut().find(|c| c.name == context.name) {
            Some(existing) => *existing = context,
            None => self.contexts.push(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_show_in_debug_output() {
        let context = Context {
            token: Some(Secret("stk_0123456789".into())),
            endpoint: Some("http://x".into()),
            ..Context::local()
        };
        assert!(!format!("{context:?}").contains("stk_"));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.upsert(Context { name: "prod".into(), token: Some(Secret("stk_x".into())), ..Context::local() });
        config.current_context = Some("prod".into());
        config.save(home.path()).unwrap();
        let mode = std::fs::metadata(Config::path(home.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Config::load(home.path()).unwrap(), config);
        assert_eq!(config.context("local"), Some(Context::local()));
    }
}
