//! Retired: the namespace controller (`k3rs-controllers`, `namespace`) now empties and
//! finalizes Terminating namespaces through the API, so the API server no longer does.
//!
//! Only the hook `handlers/delete.rs` still calls remains, doing nothing; it goes away
//! with that call.

use crate::AppState;

/// Formerly started the in-server finalizer for a namespace marked for deletion.
pub fn spawn(_state: AppState, _ns: String) {}
