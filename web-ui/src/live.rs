//! Live progress pushed to the browser as server-sent events: the dashboard, the job page and
//! the API's job stream each render their current state every `live_poll` and send it only
//! when it changed. A stream about one job ends after the job's final state; the dashboard's
//! never ends (a comment line keeps idle connections open). The pages fall back to fetching
//! fragments where `EventSource` is missing (see `static/app.js`).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};

use crate::error::AppResult;

/// One rendering of a live view.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The SSE event name.
    pub event: &'static str,
    /// Its data (HTML or JSON).
    pub data: String,
    /// Whether this is the last state (the stream ends after it).
    pub last: bool,
}

struct Watch<F> {
    render: F,
    every: Duration,
    previous: Option<String>,
    started: bool,
    done: bool,
}

/// The event stream of `render`: its first state at once, then every change, polled every
/// `every` (see [`changes`]). A render error is sent as a `stream-error` event
/// (`{"code", "message"}`) and ends the stream.
pub fn watch<F, Fut>(
    every: Duration,
    render: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = AppResult<Snapshot>> + Send + 'static,
{
    let stream = changes(every, render).map(|change| {
        Ok(match change {
            Ok(s) => Event::default().event(s.event).data(&s.data),
            Err(e) => {
                let body = serde_json::json!({ "code": e.code, "message": e.message });
                Event::default()
                    .event("stream-error")
                    .data(body.to_string())
            }
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The snapshots of `render` that differ from the one before: the first at once, then one
/// per change, looking every `every`; the stream ends after a `last` snapshot (sent even when
/// its data did not change, so a client learns the end) or after the first error.
pub fn changes<F, Fut>(every: Duration, render: F) -> impl Stream<Item = AppResult<Snapshot>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = AppResult<Snapshot>> + Send + 'static,
{
    let start = Watch {
        render,
        every,
        previous: None,
        started: false,
        done: false,
    };
    futures::stream::unfold(start, |mut w| async move {
        if w.done {
            return None;
        }
        loop {
            if w.started {
                tokio::time::sleep(w.every).await;
            }
            w.started = true;
            match (w.render)().await {
                Ok(s) if w.previous.as_deref() == Some(s.data.as_str()) && !s.last => {}
                Ok(s) => {
                    w.previous = Some(s.data.clone());
                    w.done = s.last;
                    return Some((Ok(s), w));
                }
                Err(e) => {
                    w.done = true;
                    return Some((Err(e), w));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::error::AppError;

    /// A view that renders the given states one per look.
    fn script(
        states: Vec<AppResult<(&'static str, bool)>>,
    ) -> impl Fn() -> std::future::Ready<AppResult<Snapshot>> + Send + 'static {
        let states = Arc::new(std::sync::Mutex::new(states.into_iter()));
        let looks = Arc::new(AtomicUsize::new(0));
        move || {
            looks.fetch_add(1, Ordering::Relaxed);
            let next = states.lock().unwrap().next().expect("looked past the end");
            std::future::ready(next.map(|(data, last)| Snapshot {
                event: "e",
                data: data.to_owned(),
                last,
            }))
        }
    }

    async fn collect(s: impl Stream<Item = AppResult<Snapshot>>) -> Vec<Result<String, String>> {
        s.map(|r| r.map(|s| s.data).map_err(|e| e.code.to_owned()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn only_changes_are_sent_and_the_last_state_ends_the_stream() {
        let render = script(vec![
            Ok(("a", false)),
            Ok(("a", false)),
            Ok(("a", false)),
            Ok(("b", false)),
            Ok(("b", false)),
            Ok(("b", true)),
        ]);
        let got = collect(changes(Duration::from_millis(1), render)).await;
        assert_eq!(got, vec![Ok("a".into()), Ok("b".into()), Ok("b".into())]);
    }

    #[tokio::test]
    async fn an_error_is_sent_once_and_ends_the_stream() {
        let render = script(vec![
            Ok(("a", false)),
            Err(AppError::bad_request("gone", "it went away")),
        ]);
        let got = collect(changes(Duration::from_millis(1), render)).await;
        assert_eq!(got, vec![Ok("a".into()), Err("gone".into())]);
    }
}
