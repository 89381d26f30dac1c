//! `stigmer ui`: the web console over the local store, on 127.0.0.1, for the person at this
//! machine. The login is a one-time link printed here (as Jupyter's); once a browser used it, a
//! new link is printed for the next browser.

use std::future::IntoFuture as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use clap::Args;

use super::common;
use super::help;
use super::{CommandContext, CommandError};
use crate::backend::{BackendError, Role};
use crate::console::{self, Authority, MemorySessions, Principal, Refused};
use crate::store::redb::LocalBackend;

/// Open the web console for the local store in a browser.
///
/// Serves the console (resources, their history and rollback, executions followed live, the
/// audit log) on 127.0.0.1 and prints a login link holding a one-time token; opens the browser
/// when there is one. Runs until Ctrl-C. A server's console is served by `stigmer server
/// --http-listen`.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &["stigmer ui", "stigmer ui --port 0 --no-open      # any free port; print the link only"],
    &[help::COLOR, help::HOME],
))]
pub struct UiArgs {
    /// The port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 7235)]
    pub port: u16,
    /// Print the link, do not open a browser
    #[arg(long)]
    pub no_open: bool,
}

/// The console's authority over the local store: the one-time token is the only way in.
struct LocalAuthority {
    backend: LocalBackend,
    actor: String,
    home: String,
    /// The link's token, replaced once used.
    token: Mutex<String>,
    /// Where the console is, to print the next link.
    base: String,
    sessions: MemorySessions,
}

impl LocalAuthority {
    /// The login link for the current token.
    fn link(&self) -> String {
        let token = self.token.lock().map(|token| token.clone()).unwrap_or_default();
        format!("{}/login?token={token}", self.base)
    }
}

impl Authority for LocalAuthority {
    type Backend = LocalBackend;
    type Sessions = MemorySessions;

    async fn login(&self, secret: &str) -> Result<Principal, Refused> {
        {
            let mut token =
                self.token.lock().map_err(|_| Refused::Secret("the console is shutting down".to_owned()))?;
            if !console::session::same(secret, &token) {
                return Err(Refused::Secret(
                    "that login link was used already or is not this console's; use the newest link `stigmer ui` printed"
                        .to_owned(),
                ));
            }
            *token = console::session::random_hex().map_err(|e| Refused::Secret(e.to_string()))?;
        }
        // The next browser needs the next link (this is the command line: it may print).
        eprintln!("logged in; the link for another browser: {}", self.link());
        Ok(Principal { org: None, actor: self.actor.clone(), role: Role::Admin, token_id: None })
    }

    async fn still_valid(&self, _: &Principal) -> bool {
        true
    }

    async fn backend(&self, _: &Principal, _: Option<SocketAddr>) -> Result<LocalBackend, BackendError> {
        Ok(self.backend.clone())
    }

    fn sessions(&self) -> &MemorySessions {
        &self.sessions
    }

    fn describe(&self, _: &Principal) -> String {
        format!("local store in {}", self.home)
    }

    fn takes_links(&self) -> bool {
        true
    }
}

/// Opens `url` in the desktop's browser, if this machine has one; says nothing when it cannot.
fn open_browser(url: &str) -> bool {
    let opener: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else if cfg!(windows) {
        &["cmd", "/C", "start", ""]
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        &["xdg-open"]
    } else {
        return false;
    };
    let Some((program, args)) = opener.split_first() else { return false };
    std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// Runs `stigmer ui`.
pub async fn run(ctx: &CommandContext, args: &UiArgs) -> Result<(), CommandError> {
    let context = ctx.settings.context()?;
    if let Some(endpoint) = &context.endpoint {
        return Err(CommandError::user(format!(
            "the current context ({}) is the server {endpoint}; `stigmer ui` serves the local store",
            context.name
        ))
        .hint("open the server's console at its --http-listen address, or run `stigmer ui --context local`"));
    }
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        CommandError::io(&format!("cannot listen on {address}"), e)
            .hint("pick another port with --port, or --port 0 for any")
    })?;
    let bound = listener.local_addr().map_err(|e| CommandError::io("cannot read the listening address", e))?;
    let token = console::session::random_hex().map_err(|e| CommandError::user(e.to_string()))?;
    let authority = LocalAuthority {
        backend: ctx.settings.local_backend(),
        actor: ctx.settings.actor.clone(),
        home: ctx.settings.home.display().to_string(),
        token: Mutex::new(token),
        base: format!("http://{bound}"),
        sessions: MemorySessions::default(),
    };
    let link = authority.link();
    let app = console::router(console::Console::new(authority, false));
    ctx.out(&format!("stigmer console for the local store: {link}\n"))?;
    if !args.no_open && open_browser(&link) {
        ctx.err("opened in your browser; Ctrl-C stops the console\n")?;
    } else {
        ctx.err("open the link in a browser; Ctrl-C stops the console\n")?;
    }
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(common::shutdown());
    // A page following a run holds its connection: after Ctrl-C, stop without waiting for it.
    tokio::select! {
        result = served.into_future() => result.map_err(|e| CommandError::io("the console stopped", e)),
        () = async { common::shutdown().await; tokio::time::sleep(std::time::Duration::from_secs(2)).await } => Ok(()),
    }
}
