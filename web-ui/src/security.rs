//! Access control, CSRF protection and the security headers of every response.
//!
//! - Access: open, a shared token (scripts send `Authorization: Bearer <token>`, browsers log
//!   in once at `/login` and get an HttpOnly session cookie), or HTTP basic auth. `/healthz`,
//!   `/login`, `/static/*` and `/objects/*` (which carries its own signature) are not guarded.
//! - CSRF: a state-changing request that comes from a browser (it has an `Origin`, `Cookie` or
//!   `Sec-Fetch-Site` header) must echo the `parallax_csrf` cookie in an `X-CSRF-Token` header
//!   (double submit: another site can make the browser send the cookie but cannot read it).
//!   Requests authenticated with a bearer token carry no ambient credential and are exempt.
//! - Guessing: wrong tokens and passwords (bearer, basic auth, the login form) are counted per
//!   client address by [`crate::throttle`]; past the limit the address gets 429 for a while.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::AppError;
use crate::eta::human_duration;
use crate::throttle::{self, ClientKey, Verdict};
use crate::AppState;

/// Name of the double-submit CSRF cookie.
pub const CSRF_COOKIE: &str = "parallax_csrf";
/// Header that must echo the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Name of the session cookie set by `/login` in token mode.
pub const SESSION_COOKIE: &str = "parallax_session";

/// Who may use the pages and the API.
#[derive(Clone, PartialEq, Eq)]
pub enum AccessControl {
    /// Everyone who can reach the port (the default; bind to loopback).
    Open,
    /// Holders of this token.
    Token(String),
    /// HTTP basic auth with this user and password.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessControl::Open => f.write_str("Open"),
            AccessControl::Token(_) => f.write_str("Token(<redacted>)"),
            AccessControl::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
        }
    }
}

impl AccessControl {
    /// The session cookie value that proves a browser logged in with the token: an HMAC of a
    /// fixed label under the token, so the cookie never holds the token itself.
    pub fn session_value(token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"parallax-web-session-v1");
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The CSRF token of this request (from its cookie, or freshly made and set on the response).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// Compares in time independent of where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A new random token (128 bits, hex).
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn csrf_cookie_header(token: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={token}; Path=/; SameSite=Strict{secure}"
    ))
    .expect("hex token is a valid header value")
}

/// The `Set-Cookie` value of a logged-in session.
pub fn session_cookie_header(value: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000{secure}"
    ))
    .expect("hex value is a valid header value")
}

enum Auth {
    /// Authenticated with a credential the browser does not add by itself.
    Bearer,
    /// Authenticated by something a browser sends on its own (cookie, basic auth) or open.
    Ambient,
}

/// The outcome of checking a request's credentials.
enum Checked {
    /// Let in; `credential` when it carried a token or password (not a session cookie).
    Passed { auth: Auth, credential: bool },
    /// No token or password (a session cookie that does not match counts as none: it cannot
    /// be used to guess the token).
    NoCredential,
    /// A wrong token or password: counted by the throttle.
    Wrong,
}

impl Checked {
    fn carries_credential(&self) -> bool {
        matches!(
            self,
            Checked::Passed {
                credential: true,
                ..
            } | Checked::Wrong
        )
    }
}

fn authenticate(access: &AccessControl, headers: &HeaderMap) -> Checked {
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verdict = |ok: bool, auth: Auth| {
        if ok {
            Checked::Passed {
                auth,
                credential: true,
            }
        } else {
            Checked::Wrong
        }
    };
    match access {
        AccessControl::Open => Checked::Passed {
            auth: Auth::Ambient,
            credential: false,
        },
        AccessControl::Token(token) => {
            if let Some(given) = authz.and_then(|a| a.strip_prefix("Bearer ")) {
                let ok = constant_time_eq(given.trim().as_bytes(), token.as_bytes());
                return verdict(ok, Auth::Bearer);
            }
            let expected = AccessControl::session_value(token);
            match cookie(headers, SESSION_COOKIE) {
                Some(c) if constant_time_eq(c.as_bytes(), expected.as_bytes()) => Checked::Passed {
                    auth: Auth::Ambient,
                    credential: false,
                },
                _ => Checked::NoCredential,
            }
        }
        AccessControl::Basic { user, password } => {
            let Some(given) = authz.and_then(|a| a.strip_prefix("Basic ")) else {
                return Checked::NoCredential;
            };
            let expected = format!("{user}:{password}");
            let ok = base64::engine::general_purpose::STANDARD
                .decode(given.trim())
                .is_ok_and(|decoded| constant_time_eq(&decoded, expected.as_bytes()));
            verdict(ok, Auth::Ambient)
        }
    }
}

/// 429 for an address that sent too many wrong tokens or passwords, with `Retry-After`.
pub fn too_many_attempts(retry_after: Duration) -> AppError {
    let secs = throttle::retry_after_secs(retry_after);
    AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-attempts",
        format!(
            "too many wrong tokens or passwords came from this address; try again in {}",
            human_duration(secs as f64)
        ),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(secs))
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

fn from_browser(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        || headers.contains_key(header::COOKIE)
        || headers.contains_key("sec-fetch-site")
}

/// Middleware on every guarded route: access control, then CSRF, then the CSRF cookie.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let access = &state.config.access;
    let client = ClientKey::from_extensions(req.extensions());
    let checked = authenticate(access, req.headers());
    if checked.carries_credential() {
        // While locked out, no token or password is checked, the right one neither.
        if let Verdict::Locked { retry_after } = state.throttle.check(client) {
            tracing::info!(%client, "credentials not checked: this address is locked out");
            return too_many_attempts(retry_after).into_response();
        }
    }
    let auth = match checked {
        Checked::Passed { auth, credential } => {
            if credential {
                state.throttle.record_success(client);
            }
            auth
        }
        Checked::NoCredential => return unauthenticated(access, &req),
        Checked::Wrong => {
            let verdict = state.throttle.record_failure(client);
            tracing::warn!(%client, path = %req.uri().path(), ?verdict, "wrong token or password");
            if let Verdict::Locked { retry_after } = verdict {
                return too_many_attempts(retry_after).into_response();
            }
            return unauthenticated(access, &req);
        }
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let existing = cookie(req.headers(), CSRF_COOKIE)
        .filter(|c| !c.is_empty() && c.len() <= 128)
        .map(str::to_owned);
    if unsafe_method && matches!(auth, Auth::Ambient) && from_browser(req.headers()) {
        let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let ok = matches!((&existing, sent), (Some(c), Some(s)) if constant_time_eq(c.as_bytes(), s.as_bytes()));
        if !ok {
            return AppError::forbidden(
                "csrf",
                "this request did not carry the page's CSRF token; reload the page and try again",
            )
            .into_response();
        }
    }
    let fresh = existing.is_none().then(random_token);
    let token = existing
        .clone()
        .or_else(|| fresh.clone())
        .unwrap_or_default();
    req.extensions_mut().insert(CsrfToken(token));
    let mut resp = next.run(req).await;
    if let Some(t) = fresh {
        resp.headers_mut().append(
            header::SET_COOKIE,
            csrf_cookie_header(&t, state.config.secure_cookies),
        );
    }
    resp
}

fn unauthenticated(access: &AccessControl, req: &Request) -> Response {
    let path = req.uri().path();
    match access {
        AccessControl::Token(_) if !is_api(path) && req.method() == Method::GET => {
            let next = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            Redirect::to(&format!("/login?{q}")).into_response()
        }
        AccessControl::Basic { .. } => AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this site needs a user name and password",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"parallax\", charset=\"UTF-8\""),
        )
        .into_response(),
        _ => AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this site needs an access token: send `Authorization: Bearer <token>` or log in at /login",
        )
        .into_response(),
    }
}

/// The Content-Security-Policy of every response: scripts and styles only from this site (no
/// inline script can run even if some text escaped escaping), media and uploads may go to the
/// storage's own origin (S3 on AWS). `media-src blob:` lets the job page's own script play a
/// converting job's finished segments through a Media Source (an object URL it made itself).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data: https: http:; media-src 'self' blob: https: http:; \
connect-src 'self' https: http:; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// Middleware on every route: security headers.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Presigned URLs are in the pages: never leak them to other sites through Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    resp
}

/// Where to go after logging in: only a local path, never another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}
