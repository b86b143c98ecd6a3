//! Where the project's scripts put what they install (kept in step with `scripts/lib.sh`).

use std::path::PathBuf;

/// The cache directory shared with the scripts: `$PROXIMITY_SUITE_CACHE`, else
/// `$XDG_CACHE_HOME/proximity-suite`, else `~/.cache/proximity-suite`.
pub fn suite_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROXIMITY_SUITE_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("proximity-suite")
}

/// The virtualenv holding moto, kubernetes-validate and the other Python tools.
pub fn suite_venv() -> PathBuf {
    suite_cache().join("venv")
}
