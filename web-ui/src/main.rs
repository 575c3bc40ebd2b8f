//! web-ui: serves the pages, the JSON API and (with local storage) the presigned object
//! endpoint. `web-ui --help` explains every flag; each has an environment variable.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use parallax_core::{backends::Backends, config::CommonArgs, telemetry};
use web_ui::{AccessControl, AppState, ThrottleConfig, WebConfig};

/// parallax web-ui: upload page, dashboard, job pages and the JSON API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// TCP port to listen on.
    #[arg(long, env = "WEB_UI_PORT", default_value_t = 8080)]
    port: u16,

    /// Address to listen on. The default serves this machine only; listening on another
    /// address without --access-token or --basic-auth logs a warning.
    #[arg(long, env = "WEB_UI_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,

    /// Largest upload accepted, in bytes or with a K/M/G/T suffix (powers of 1024).
    #[arg(long, env = "WEB_UI_MAX_UPLOAD", default_value = "10G", value_parser = parse_size)]
    max_upload: u64,

    /// Largest JSON or form request body, in bytes or with a K/M suffix.
    #[arg(long, env = "WEB_UI_MAX_BODY", default_value = "64K", value_parser = parse_size)]
    max_body: u64,

    /// Require this token: scripts send `Authorization: Bearer <token>`, browsers log in once
    /// at /login. /healthz and presigned object URLs stay open.
    #[arg(
        long,
        env = "WEB_UI_ACCESS_TOKEN",
        hide_env_values = true,
        conflicts_with = "basic_auth"
    )]
    access_token: Option<String>,

    /// Require HTTP basic auth, given as `user:password`.
    #[arg(long, env = "WEB_UI_BASIC_AUTH", hide_env_values = true)]
    basic_auth: Option<String>,

    /// Mark cookies `Secure` (set this when the site is reached over HTTPS).
    #[arg(long, env = "WEB_UI_SECURE_COOKIES", default_value_t = false)]
    secure_cookies: bool,

    /// Seconds a presigned upload URL stays valid.
    #[arg(long, env = "WEB_UI_UPLOAD_URL_TTL_SECS", default_value_t = 6 * 3600)]
    upload_url_ttl_secs: u64,

    /// Seconds a presigned download, player or preview URL stays valid.
    #[arg(long, env = "WEB_UI_DOWNLOAD_URL_TTL_SECS", default_value_t = 3600)]
    download_url_ttl_secs: u64,

    /// Seconds the ETA basis (average seconds per MB of recent jobs) is cached.
    #[arg(long, env = "WEB_UI_ETA_CACHE_SECS", default_value_t = 30)]
    eta_cache_secs: u64,

    /// Rows per page of the dashboard lists.
    #[arg(long, env = "WEB_UI_PAGE_SIZE", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=100))]
    page_size: u16,

    /// Wrong tokens or passwords one client address may send within 15 minutes before it is
    /// locked out (answered 429 without its credentials being checked).
    #[arg(long, env = "WEB_UI_LOGIN_MAX_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    login_max_failures: u32,

    /// Seconds of the first lockout; each further one from the same address doubles, up to an
    /// hour.
    #[arg(long, env = "WEB_UI_LOGIN_BACKOFF_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    login_backoff_secs: u64,

    /// Milliseconds between the looks of a live view (dashboard, job page, the API's event
    /// stream) for changes to push.
    #[arg(long, env = "WEB_UI_LIVE_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    live_poll_ms: u64,

    /// The depth-model catalogue: the models a job may name (`settings.model`). Without the
    /// file, jobs cannot name a model and the workers' default converts them.
    #[arg(long, env = "MODEL_CATALOGUE", default_value = parallax_core::catalogue::DEFAULT_PATH)]
    catalogue: std::path::PathBuf,

    /// Seconds to let requests in flight finish after SIGTERM before exiting anyway.
    #[arg(long, env = "WEB_UI_DRAIN_TIMEOUT_SECS", default_value_t = 10)]
    drain_timeout_secs: u64,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size suffix {c:?}; use K, M, G or T")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 500M or 2G"))?;
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

impl Cli {
    fn access(&self) -> anyhow::Result<AccessControl> {
        if let Some(t) = &self.access_token {
            anyhow::ensure!(
                t.len() >= 16,
                "--access-token must be at least 16 characters long"
            );
            return Ok(AccessControl::Token(t.clone()));
        }
        if let Some(b) = &self.basic_auth {
            let (user, password) = b
                .split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty())
                .context("--basic-auth must be `user:password` with both parts non-empty")?;
            return Ok(AccessControl::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            });
        }
        Ok(AccessControl::Open)
    }

    fn web_config(&self) -> anyhow::Result<WebConfig> {
        Ok(WebConfig {
            access: self.access()?,
            max_upload_bytes: self.max_upload,
            max_body_bytes: usize::try_from(self.max_body).context("--max-body is too large")?,
            upload_url_ttl: Duration::from_secs(self.upload_url_ttl_secs.max(60)),
            download_url_ttl: Duration::from_secs(self.download_url_ttl_secs.max(60)),
            eta_cache_ttl: Duration::from_secs(self.eta_cache_secs),
            page_size: usize::from(self.page_size),
            secure_cookies: self.secure_cookies,
            live_poll: Duration::from_millis(self.live_poll_ms),
            catalogue: match parallax_core::catalogue::Catalogue::load(&self.catalogue) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "no model catalogue: jobs cannot name a depth model");
                    None
                }
            },
            login_throttle: ThrottleConfig {
                max_failures: self.login_max_failures,
                backoff: Duration::from_secs(self.login_backoff_secs),
                ..ThrottleConfig::default()
            },
            ..WebConfig::default()
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.common.log_format);
    let config = cli.web_config()?;
    if !cli.bind.is_loopback() && config.access == AccessControl::Open {
        tracing::warn!(bind = %cli.bind, "listening beyond this machine without access control; set --access-token or --basic-auth");
    }
    let backends = Backends::from_config(&cli.common)
        .await
        .context("building the storage and queue adapters")?;
    let app = web_ui::app(AppState::new(&backends, config));
    let addr = SocketAddr::new(cli.bind, cli.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} (is another process using the port?)"))?;
    tracing::info!(%addr, adapter = ?cli.common.storage_adapter, "web-ui listening");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The peer address is what wrong logins are counted against (see `throttle`).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        telemetry::shutdown_signal().await;
        let _ = stop_tx.send(());
    });
    let drain = Duration::from_secs(cli.drain_timeout_secs);
    let deadline = async move {
        if stop_rx.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = server => r.context("serving HTTP")?,
        _ = deadline => tracing::warn!(secs = drain.as_secs(), "requests still running after the drain timeout; exiting"),
    }
    tracing::info!("web-ui stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("500"), Ok(500));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("lots").is_err());
    }
}
