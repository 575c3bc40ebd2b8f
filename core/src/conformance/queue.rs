//! Queue contract tests.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Harness;
use crate::queue::QueueSettings;
use crate::Error;

fn settings(visibility_secs: u64, max_receives: u32) -> QueueSettings {
    QueueSettings {
        visibility_timeout: Duration::from_secs(visibility_secs),
        max_receives,
        wait_time: Duration::from_millis(200),
    }
}

/// Receives until `n` messages are gathered or `within` passes.
async fn receive_n(
    q: &dyn crate::queue::QueueReceiver,
    n: usize,
    within: Duration,
) -> Vec<crate::queue::ReceivedMessage> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        got.extend(q.receive(10.min(n - got.len())).await.unwrap());
    }
    got
}

/// A sent message is received once with count 1, and gone after delete.
pub async fn send_receive_delete(h: &dyn Harness) {
    let q = h.queue(settings(30, 5)).await.unwrap();
    let id = q.sender.send("hello {\"json\": true}").await.unwrap();
    let got = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "hello {\"json\": true}");
    assert_eq!(got[0].message_id, id);
    assert_eq!(got[0].receive_count, 1);
    q.receiver.delete(&got[0].receipt_handle).await.unwrap();
    assert!(q.receiver.receive(10).await.unwrap().is_empty());
}

/// A batch send delivers every entry.
pub async fn batch_send_delivers_every_entry(h: &dyn Harness) {
    let q = h.queue(settings(30, 5)).await.unwrap();
    let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    q.sender.send_batch(&bodies).await.unwrap();
    let got = receive_n(q.receiver.as_ref(), 25, Duration::from_secs(10)).await;
    let set: HashSet<String> = got.iter().map(|m| m.body.clone()).collect();
    assert_eq!(set, bodies.into_iter().collect::<HashSet<_>>());
    assert_eq!(got.len(), 25, "a batch entry was delivered twice");
}

/// An empty queue answers with nothing after waiting about its wait time.
pub async fn receive_long_polls_then_returns_empty(h: &dyn Harness) {
    let q = h.queue(settings(30, 5)).await.unwrap();
    let t = Instant::now();
    assert!(q.receiver.receive(1).await.unwrap().is_empty());
    assert!(t.elapsed() < Duration::from_secs(25), "receive hung");
    // A message sent while a receiver waits is picked up by that receive.
    let r = q.receiver.clone();
    let waiting = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = r.receive(1).await.unwrap();
            if !got.is_empty() || Instant::now() > deadline {
                return got;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    q.sender.send("late").await.unwrap();
    assert_eq!(waiting.await.unwrap()[0].body, "late");
}

/// A message received and not deleted comes back after the visibility timeout.
///
/// The timeout passes on the harness's clock ([`Harness::advance`]: at once on the local
/// adapters). Margins are wide (a few seconds, and waiting for a message to come back rather
/// than expecting it at once) because emulators under load answer slowly: a test that fails
/// must mean a broken adapter, never a slow one, with no retries.
pub async fn visibility_timeout_redelivers(h: &dyn Harness) {
    let q = h.queue(settings(3, 5)).await.unwrap();
    q.sender.send("again").await.unwrap();
    let first = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1);
    let held_at = Instant::now();
    let early = q.receiver.receive(1).await.unwrap();
    if held_at.elapsed() < Duration::from_secs(2) {
        assert!(early.is_empty(), "visible while held");
    }
    h.advance(Duration::from_secs(3)).await;
    let second = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(15)).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].body, "again");
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt_handle, first[0].receipt_handle);
    q.receiver.delete(&second[0].receipt_handle).await.unwrap();
}

/// `change_visibility` keeps a message hidden past its timeout (heartbeat), and 0 releases it.
pub async fn change_visibility_extends_and_releases(h: &dyn Harness) {
    let q = h.queue(settings(2, 5)).await.unwrap();
    q.sender.send("long work").await.unwrap();
    let m = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
    let handle = &m[0].receipt_handle;
    // Each beat extends the lease well past the next check, and each check comes after the
    // queue's own 2 s timeout would have run out: only the heartbeat keeps the message hidden.
    // (Generous margins: emulators under load answer slowly.)
    for _ in 0..3 {
        q.receiver
            .change_visibility(handle, Duration::from_secs(8))
            .await
            .unwrap();
        h.advance(Duration::from_millis(2300)).await;
        assert!(
            q.receiver.receive(1).await.unwrap().is_empty(),
            "heartbeat did not keep the message hidden"
        );
    }
    q.receiver
        .change_visibility(handle, Duration::ZERO)
        .await
        .unwrap();
    let again = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
    assert_eq!(again.len(), 1, "released message did not come back");
    q.receiver.delete(&again[0].receipt_handle).await.unwrap();
}

/// A message received more than max-receives times lands in the dead-letter queue.
pub async fn dead_letter_after_max_receives(h: &dyn Harness) {
    let q = h.queue(settings(1, 2)).await.unwrap();
    q.sender.send("poison").await.unwrap();
    for attempt in 1..=2 {
        let m = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
        assert_eq!(m.len(), 1, "attempt {attempt}");
        assert_eq!(m[0].receive_count, attempt);
        // Give up on it: let the visibility timeout run out.
        q.receiver
            .change_visibility(&m[0].receipt_handle, Duration::ZERO)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut dead = Vec::new();
    while dead.is_empty() && Instant::now() < deadline {
        assert!(
            q.receiver.receive(1).await.unwrap().is_empty(),
            "poison delivered a third time"
        );
        dead = q.dead_letters.receive(1).await.unwrap();
    }
    assert_eq!(dead.len(), 1, "not in the dead-letter queue");
    assert_eq!(dead[0].body, "poison");
    q.dead_letters
        .delete(&dead[0].receipt_handle)
        .await
        .unwrap();
}

/// A stale handle (the message was received again since) never deletes the message.
pub async fn stale_handle_does_not_delete(h: &dyn Harness) {
    let q = h.queue(settings(3, 5)).await.unwrap();
    q.sender.send("held twice").await.unwrap();
    let first = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
    // Comes back once its 3 s lease has run out.
    h.advance(Duration::from_secs(3)).await;
    let second = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(15)).await;
    assert_eq!(second.len(), 1);
    // Held for long now, so that a slow answer below cannot let the lease lapse.
    q.receiver
        .change_visibility(&second[0].receipt_handle, Duration::from_secs(60))
        .await
        .expect("the newest handle holds the message");
    match q.receiver.delete(&first[0].receipt_handle).await {
        Ok(()) | Err(Error::StaleReceipt { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
    }
    // The current holder's handle still works, and the message was not lost.
    q.receiver
        .change_visibility(&second[0].receipt_handle, Duration::ZERO)
        .await
        .expect("the current handle must still hold the message");
    let third = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
    assert_eq!(third.len(), 1, "stale delete removed the message");
    q.receiver.delete(&third[0].receipt_handle).await.unwrap();
}

/// A handle that was never issued is rejected.
pub async fn unknown_handle_is_rejected(h: &dyn Harness) {
    let q = h.queue(settings(30, 5)).await.unwrap();
    q.sender.send("keep").await.unwrap();
    for bogus in ["garbage", "1:deadbeef"] {
        let r = q.receiver.delete(bogus).await;
        assert!(
            matches!(
                r,
                Err(Error::InvalidInput { .. }) | Err(Error::StaleReceipt { .. })
            ),
            "{bogus}: {r:?}"
        );
    }
    let m = receive_n(q.receiver.as_ref(), 1, Duration::from_secs(5)).await;
    assert_eq!(m.len(), 1, "a bogus delete removed a message");
}

/// Receivers racing on one queue never hold the same message at the same time.
pub async fn concurrent_receivers_never_share_a_message(h: &dyn Harness) {
    let q = h.queue(settings(30, 5)).await.unwrap();
    let bodies: Vec<String> = (0..200).map(|i| format!("c{i}")).collect();
    for chunk in bodies.chunks(10) {
        q.sender.send_batch(chunk).await.unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (r, seen) = (q.receiver.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            let mut empty = 0;
            while empty < 3 {
                let got = r.receive(10).await.unwrap();
                if got.is_empty() {
                    empty += 1;
                    continue;
                }
                empty = 0;
                for m in got {
                    seen.lock().unwrap().push(m.body.clone());
                    r.delete(&m.receipt_handle).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let set: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 200, "a message was handed to two receivers");
    assert_eq!(set.len(), 200);
}
