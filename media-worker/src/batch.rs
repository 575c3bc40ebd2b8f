//! Running async steps a few at a time (uploads, downloads, storage look-ups).

/// Runs `f` on every item, at most `n` at a time, stopping at the first error; results in
/// order.
pub(crate) async fn try_batched<T, R, E, Fut>(
    items: Vec<T>,
    n: usize,
    f: impl Fn(T) -> Fut,
) -> Result<Vec<R>, E>
where
    Fut: std::future::Future<Output = Result<R, E>>,
{
    let mut out = Vec::with_capacity(items.len());
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        let batch: Vec<Fut> = it.by_ref().take(n.max(1)).map(&f).collect();
        out.extend(futures::future::try_join_all(batch).await?);
    }
    Ok(out)
}
