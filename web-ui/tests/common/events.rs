//! A server-sent event stream from the router, read event by event.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use futures::StreamExt as _;
use tower::ServiceExt as _;

use super::{req, TestApp};

/// An open event stream, read event by event.
pub struct Events {
    uri: String,
    body: axum::body::BodyDataStream,
    buf: String,
}

impl Events {
    /// Opens the stream at `uri`; it must answer 200 with `text/event-stream`.
    pub async fn open(app: &TestApp, uri: &str) -> Self {
        let resp = app
            .app
            .clone()
            .oneshot(req(Method::GET, uri, &[], Body::empty()))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream",
            "{uri}"
        );
        Self {
            uri: uri.to_owned(),
            body: resp.into_body().into_data_stream(),
            buf: String::new(),
        }
    }

    /// The next named event as (name, data), skipping keep-alive comments; `None` at the end.
    pub async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), Vec::new());
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if name.is_empty() {
                    continue;
                }
                return Some((name, data.join("\n")));
            }
            // A guard against a hang, not a timing assertion.
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.body.next())
                .await
                .unwrap_or_else(|_| panic!("no event from {} within a minute", self.uri))?;
            self.buf
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    /// The data of the first event called `event`, skipping others.
    pub async fn first(&mut self, event: &str) -> String {
        loop {
            match self.next().await {
                Some((name, data)) if name == event => return data,
                Some(_) => {}
                None => panic!("{} ended before a {event} event", self.uri),
            }
        }
    }
}
