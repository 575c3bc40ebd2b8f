//! parallax's web front: the pages a person uses (upload, dashboard, job page), the JSON API
//! that the pages and scripts share (described at `/api/openapi.json`), and, with the local
//! storage adapter, the presigned object endpoint `/objects/{key}` that uploads and downloads
//! go to.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use parallax_core::{backends::Backends, config::CommonArgs};
//! let backends = Backends::from_config(&CommonArgs::local("./data")).await?;
//! let app = web_ui::app(web_ui::AppState::new(&backends, web_ui::WebConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // The peer address is what wrong logins are counted against.
//! let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use parallax_core::backends::Backends;
use parallax_core::completions::SegmentCompletionStore;
use parallax_core::jobs::JobStore;
use parallax_core::links::OperatorLinksProvider;
use parallax_core::storage::presign::Presigner;
use parallax_core::storage::ObjectStorage;

mod api;
pub mod error;
pub mod eta;
pub mod live;
mod objects;
mod openapi;
mod pages;
pub mod presets;
pub mod security;
pub mod throttle;
pub mod views;

pub use error::{AppError, AppResult};
pub use security::AccessControl;
pub use throttle::ThrottleConfig;

/// The web-ui's own settings (the storage and job settings come from core's `CommonArgs`).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Who may use the pages and the API.
    pub access: AccessControl,
    /// Largest accepted upload, in bytes (checked before and while streaming).
    pub max_upload_bytes: u64,
    /// Largest JSON or form body of the API and pages, in bytes.
    pub max_body_bytes: usize,
    /// How long a presigned upload URL stays valid.
    pub upload_url_ttl: Duration,
    /// How long a presigned download or preview URL stays valid.
    pub download_url_ttl: Duration,
    /// How long the average seconds per MB (the ETA basis) is cached.
    pub eta_cache_ttl: Duration,
    /// How many recent completed jobs the ETA averages over.
    pub eta_sample_jobs: usize,
    /// Rows per page of the dashboard's lists.
    pub page_size: usize,
    /// Mark cookies `Secure` (set when the site is served over HTTPS).
    pub secure_cookies: bool,
    /// How wrong tokens and passwords are throttled per client address.
    pub login_throttle: ThrottleConfig,
    /// How often a live view (server-sent events) looks for changes.
    pub live_poll: Duration,
    /// The depth-model catalogue: the names `settings.model` may take. `None`: no catalogue,
    /// so a job may not name a model (the workers' default converts it).
    pub catalogue: Option<parallax_core::catalogue::Catalogue>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            access: AccessControl::Open,
            max_upload_bytes: 10 * 1024 * 1024 * 1024,
            max_body_bytes: 64 * 1024,
            upload_url_ttl: Duration::from_secs(6 * 3600),
            download_url_ttl: Duration::from_secs(3600),
            eta_cache_ttl: Duration::from_secs(30),
            eta_sample_jobs: 50,
            page_size: 20,
            secure_cookies: false,
            login_throttle: ThrottleConfig::default(),
            live_poll: Duration::from_secs(1),
            catalogue: None,
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Jobs.
    pub jobs: Arc<dyn JobStore>,
    /// Segment completions (progress).
    pub completions: Arc<dyn SegmentCompletionStore>,
    /// Objects (uploads, results, previews).
    pub storage: Arc<dyn ObjectStorage>,
    /// Operator links (logs, cost).
    pub links: Arc<dyn OperatorLinksProvider>,
    /// Set when web-ui serves `/objects/{key}` itself (local storage).
    pub presigner: Option<Presigner>,
    /// Settings.
    pub config: Arc<WebConfig>,
    /// The cached ETA basis.
    pub eta: Arc<eta::EtaCache>,
    /// Wrong credentials counted per client address.
    pub throttle: Arc<throttle::LoginThrottle>,
}

impl AppState {
    /// State on an adapter set.
    pub fn new(backends: &Backends, config: WebConfig) -> Self {
        let eta = Arc::new(eta::EtaCache::new(
            config.eta_cache_ttl,
            config.eta_sample_jobs,
        ));
        let throttle = Arc::new(throttle::LoginThrottle::new(config.login_throttle.clone()));
        Self {
            jobs: backends.jobs.clone(),
            completions: backends.completions.clone(),
            storage: backends.storage.clone(),
            links: backends.links.clone(),
            presigner: backends.presigner.clone(),
            config: Arc::new(config),
            eta,
            throttle,
        }
    }
}

/// The whole web-ui as one router.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(pages::dashboard))
        .route("/events", get(pages::dashboard_events))
        .route("/upload", get(pages::upload))
        .route("/jobs/{id}", get(pages::job))
        .route("/jobs/{id}/events", get(pages::job_events))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/presets", get(api::settings::list_presets))
        .route("/api/jobs/{id}/events", get(api::jobs::job_events))
        .route(
            "/api/jobs",
            post(api::create::create_job).get(api::jobs::list_jobs),
        )
        .route(
            "/api/jobs/{id}",
            get(api::jobs::get_job)
                .patch(api::patch::patch_job)
                .delete(api::jobs::cancel_job),
        )
        .route("/api/jobs/{id}/download", get(api::jobs::download))
        .route("/api/jobs/{id}/rerender", post(api::rerender::rerender_job))
        .route("/api/jobs/{id}/convert", post(api::convert::convert_all))
        .route("/api/models", get(api::settings::list_models))
        .route("/api/jobs/{id}/segments", get(api::segments::list))
        .route(
            "/api/jobs/{id}/segments/{index}",
            get(api::segments::segment),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes));

    let mut open = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/static/{file}", get(pages::static_file))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes));
    if state.presigner.is_some() {
        // Uploads are streamed and limited by `max_upload_bytes` in the handler itself.
        open = open.route(
            "/objects/{*key}",
            get(objects::get_object)
                .put(objects::put_object)
                .layer(DefaultBodyLimit::disable()),
        );
    }

    protected
        .merge(open)
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn(security::headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
