//! Answering with something else when a call fails in an expected way.
//!
//! A fallback hides a failure from the caller, so it never hides it from the
//! log: each use is a `tracing` event (target `rampart::resilience`) with the
//! code of the error it replaced.

use super::TARGET;
use crate::error::{Error, ErrorKind};

/// Replaces an error of one of `kinds` with `value`; other errors and
/// successes pass through.
///
/// ```
/// use rampart::error::{Error, ErrorKind};
/// use rampart::resilience::fallback;
///
/// let recommendations: Result<Vec<&str>, Error> = Err(Error::unavailable("recommender is down"));
/// let shown = fallback(recommendations, &[ErrorKind::Unavailable, ErrorKind::Timeout], vec![]);
/// assert_eq!(shown.unwrap(), Vec::<&str>::new());
///
/// let bad: Result<Vec<&str>, Error> = Err(Error::validation("bad page size"));
/// assert!(fallback(bad, &[ErrorKind::Unavailable], vec![]).is_err());
/// ```
///
/// # Errors
/// The error of `result` when its kind is not one of `kinds`.
pub fn fallback<T>(result: Result<T, Error>, kinds: &[ErrorKind], value: T) -> Result<T, Error> {
    fallback_with(result, kinds, |_| Ok(value))
}

/// Hands an error of one of `kinds` to `recover`, whose result is returned
/// instead (it may compute a value, read a cache, or fail differently);
/// other errors and successes pass through.
///
/// ```
/// use rampart::error::{Error, ErrorKind};
/// use rampart::resilience::fallback_with;
///
/// let live: Result<u32, Error> = Err(Error::timeout("pricing timed out"));
/// let price = fallback_with(live, &[ErrorKind::Timeout], |_err| Ok(1999)); // the cached price
/// assert_eq!(price.unwrap(), 1999);
/// ```
///
/// # Errors
/// The error of `result` when its kind is not one of `kinds`, or what
/// `recover` returned.
pub fn fallback_with<T>(
    result: Result<T, Error>,
    kinds: &[ErrorKind],
    recover: impl FnOnce(Error) -> Result<T, Error>,
) -> Result<T, Error> {
    match result {
        Err(err) if kinds.contains(&err.kind()) => {
            tracing::info!(target: TARGET, code = %err.code(), kind = %err.kind(),
                "fallback replaced a failure");
            recover(err)
        }
        other => other,
    }
}
