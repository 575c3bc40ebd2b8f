//! Access control, CSRF, escaping, body limits and the presigned object endpoint; one module
//! per concern.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod csrf;
mod escaping;
mod throttle;
mod uploads;

use web_ui::{AccessControl, WebConfig};

/// The access token of the token-guarded apps.
const TOKEN: &str = "a-long-enough-test-token";

/// An app guarded by [`TOKEN`].
fn token_config() -> WebConfig {
    WebConfig {
        access: AccessControl::Token(TOKEN.to_owned()),
        ..WebConfig::default()
    }
}
