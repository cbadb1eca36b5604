//! Bounding how long an async operation may take.

use std::future::Future;
use std::time::Duration;

use super::{TARGET, millis};
use crate::error::Error;

/// Runs `future`, failing with a `TIMEOUT` error (kind
/// [`Timeout`](crate::ErrorKind::Timeout), retryable) if it has not finished
/// within `duration`. The future is dropped at that point, so whatever it was
/// waiting on is cancelled. Needs a tokio runtime with time enabled.
///
/// ```
/// use std::time::Duration;
/// use rampart::error::{Error, ErrorKind};
/// use rampart::resilience::timeout;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let slow = async {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok::<_, Error>("late")
/// };
/// let err = timeout(Duration::from_millis(10), slow).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// # }
/// ```
///
/// # Errors
/// `TIMEOUT` when time runs out; otherwise what the future returned.
pub async fn timeout<T, F>(duration: Duration, future: F) -> Result<T, Error>
where
    F: Future<Output = Result<T, Error>>,
{
    match tokio::time::timeout(duration, future).await {
        Ok(result) => result,
        Err(_) => {
            let timeout_ms = millis(duration);
            tracing::debug!(target: TARGET, timeout_ms, "an operation timed out");
            Err(Error::timeout("The operation did not finish in time")
                .with_detail("timeout_ms", timeout_ms))
        }
    }
}
