//! The login page (token mode): the form, the session and CSRF cookies, and the lock-out of an
//! address that tried too many wrong tokens.

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::layout;
use crate::eta::human_duration;
use crate::security::{self, AccessControl};
use crate::throttle::{self, ClientKey, Verdict};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

fn login_csrf(jar: &CookieJar) -> (String, bool) {
    match jar
        .get(security::CSRF_COOKIE)
        .map(Cookie::value)
        .filter(|c| !c.is_empty() && c.len() <= 128)
    {
        Some(c) => (c.to_owned(), false),
        None => (security::random_token(), true),
    }
}

/// The login form's CSRF cookie: `Secure` under `--secure-cookies`, as the session's is.
pub fn csrf_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((security::CSRF_COOKIE, token))
        .path("/")
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
}

/// The session cookie set by a right login: HttpOnly, 30 days, `Secure` under
/// `--secure-cookies`.
pub fn session_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((security::SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::days(30))
        .secure(secure)
        .build()
}

/// The login form with an optional notice, answered with `status`.
fn login_page(
    state: &AppState,
    jar: CookieJar,
    next: Option<&str>,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let (csrf, fresh) = login_csrf(&jar);
    let body = html! {
        h1 { "Log in" }
        @if let Some(n) = notice {
            p class="error-text" role="alert" { (n) }
        }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(security::safe_next(next));
            label {
                "Access token "
                input type="password" name="token" id="token" autocomplete="current-password" required;
            }
            button type="submit" { "Log in" }
        }
    };
    let page = Html(layout(state, "Log in", &csrf, body).into_string());
    let jar = if fresh {
        jar.add(csrf_cookie(csrf, state.config.secure_cookies))
    } else {
        jar
    };
    (status, jar, page).into_response()
}

/// The login form saying when the address may try again: 429 with `Retry-After`.
fn locked_out_page(
    state: &AppState,
    jar: CookieJar,
    next: Option<&str>,
    retry_after: std::time::Duration,
) -> Response {
    let secs = throttle::retry_after_secs(retry_after);
    let at = Utc::now() + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2));
    let notice = format!(
        "Too many wrong tokens were tried from your address. Please wait {} and try again \
         (after {} UTC).",
        human_duration(secs as f64),
        at.format("%H:%M:%S")
    );
    let mut resp = login_page(
        state,
        jar,
        next,
        Some(&notice),
        StatusCode::TOO_MANY_REQUESTS,
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// `GET /login` (token mode): a form for the access token.
pub async fn login_form(
    State(state): State<AppState>,
    client: ClientKey,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Response {
    if !matches!(state.config.access, AccessControl::Token(_)) {
        return Redirect::to("/").into_response();
    }
    if let Verdict::Locked { retry_after } = state.throttle.check(client) {
        return locked_out_page(&state, jar, q.next.as_deref(), retry_after);
    }
    let failed = q.failed.is_some().then_some("That token is not right.");
    login_page(&state, jar, q.next.as_deref(), failed, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: checks the token and sets the session cookie. Wrong tokens are counted per
/// client address (see [`crate::throttle`]); a locked-out address gets the form back with 429
/// and when to try again, its token unchecked.
pub async fn login(
    State(state): State<AppState>,
    client: ClientKey,
    jar: CookieJar,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let AccessControl::Token(token) = &state.config.access else {
        return Redirect::to("/").into_response();
    };
    if let Verdict::Locked { retry_after } = state.throttle.check(client) {
        tracing::info!(%client, "login not checked: this address is locked out");
        let next = form.as_ref().ok().and_then(|f| f.next.as_deref());
        return locked_out_page(&state, jar, next, retry_after);
    }
    let f = match form {
        Ok(Form(f)) => f,
        Err(rejection) => {
            tracing::info!(%client, reason = %rejection.body_text(), "unreadable login form");
            let (status, notice) = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "That login form was too large to read. Enter the access token and try again.",
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "That login form could not be read (a field was missing or it was not sent \
                     as a form). Enter the access token and try again.",
                )
            };
            return login_page(&state, jar, None, Some(notice), status);
        }
    };
    let cookie = jar
        .get(security::CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if cookie.is_empty() || !security::constant_time_eq(cookie.as_bytes(), f.csrf.as_bytes()) {
        return login_page(
            &state,
            jar,
            f.next.as_deref(),
            Some("The login form expired. Enter the access token again."),
            StatusCode::FORBIDDEN,
        );
    }
    let next = security::safe_next(f.next.as_deref()).to_owned();
    if !security::constant_time_eq(f.token.as_bytes(), token.as_bytes()) {
        let verdict = state.throttle.record_failure(client);
        tracing::warn!(%client, ?verdict, "login with a wrong token");
        if let Verdict::Locked { retry_after } = verdict {
            return locked_out_page(&state, jar, Some(&next), retry_after);
        }
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .append_pair("failed", "1")
            .finish();
        return Redirect::to(&format!("/login?{q}")).into_response();
    }
    state.throttle.record_success(client);
    let session = session_cookie(
        AccessControl::session_value(token),
        state.config.secure_cookies,
    );
    (jar.add(session), Redirect::to(&next)).into_response()
}
