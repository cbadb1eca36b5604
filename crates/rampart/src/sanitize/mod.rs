//! Output encoding and the few sanitizers that are safe: HTML (allow-list
//! clean and escape), file names, paths under a root, SQL identifiers and
//! LIKE patterns, log lines.
//!
//! rampart does not "sanitize" input by stripping what looks dangerous
//! (that is bypassed, and mangles honest data); [`validate`](crate::validate)
//! rejects bad input. What is here either **encodes** for an output context
//! ([`escape`], [`neutralize`], [`quote_identifier`], [`escape_like`]),
//! **refuses** what cannot be made safe ([`file_name`], [`safe_join`]), or,
//! where rich text really must be kept, removes everything that is not on an
//! allow-list ([`clean`], feature `html`).
//!
//! ```
//! use rampart::sanitize::{escape, escape_like, file_name, neutralize, quote_identifier};
//!
//! assert_eq!(escape("<b>O'Brian & co</b>"), "&lt;b&gt;O&#x27;Brian &amp; co&lt;/b&gt;");
//! assert_eq!(neutralize("bob\r\nlevel=admin"), "bob\\r\\nlevel=admin");
//! assert!(file_name("../etc/passwd").is_err());
//! assert_eq!(quote_identifier("order").unwrap(), "\"order\"");
//! assert_eq!(escape_like("100%_off"), "100\\%\\_off");
//! ```

mod filename;
mod html;
mod log;
mod path;
mod sql;

pub use filename::{MAX_FILE_NAME_BYTES, file_name};
#[cfg(feature = "html")]
pub use html::clean;
pub use html::escape;
pub use log::{Neutralized, neutralize, neutralize_bytes};
pub use path::safe_join;
pub use sql::{MAX_IDENTIFIER_BYTES, escape_like, quote_identifier};
