//! The developer open API's JSON (protocol §1b), pure: flattening nested JSON into
//! `a.b` / `a[0]` keys (request signing and quota messages share it) and the value
//! mapping of quota and status messages onto catalog states.

pub mod flatten;
pub mod quota;

pub use flatten::{Arrays, flatten, flatten_text};
pub use quota::{decode_quota, decode_status};
