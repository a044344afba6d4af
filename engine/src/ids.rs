//! Random identifiers (client message ids, client sessions, room epochs), the millisecond
//! clock, and waiting for a deadline that may not be set.

/// `bytes` random bytes from the operating system, as lowercase hex.
///
/// Sessions, nonces and room epochs are secrets or must never repeat, so there is no
/// fallback: if the operating system has no randomness to give (only seen in broken
/// sandboxes), this panics with the reason rather than hand out guessable values.
pub fn random_hex(bytes: usize) -> String {
    try_random_hex(bytes, getrandom::fill)
        .unwrap_or_else(|e| panic!("the operating system's random source failed: {e}"))
}

/// [`random_hex`] with the random source given, so its failure can be tested.
fn try_random_hex<E>(
    bytes: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
) -> Result<String, E> {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// Milliseconds since the Unix epoch, the timestamp every chat event carries.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sleeps until `deadline`, or forever when there is none: a `select!` branch for an
/// optional timer (typing expiry, a rate-limit pause, the next announcement refresh).
pub async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_hex_has_the_asked_length_and_differs() {
        let a = super::random_hex(16);
        let b = super::random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_failing_random_source_is_an_error_not_a_weaker_value() {
        let failed = super::try_random_hex(16, |_| Err("no entropy"));
        assert_eq!(failed, Err("no entropy"));
    }
}
