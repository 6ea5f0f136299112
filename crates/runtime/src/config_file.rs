//! Which config file the long-running commands read when none is named: the usual places
//! of a user's and a packaged installation, first found wins — and, when there is none,
//! one line saying how to make one.

use std::path::{Path, PathBuf};

/// The config file of the Debian package (a conffile: upgrades keep the user's edits).
pub const SYSTEM_CONFIG: &str = "/etc/oceanbridge/oceanbridge.toml";
/// The file name looked for in the working directory and the user's config directory.
pub const FILE_NAME: &str = "oceanbridge.toml";

/// Where a config file is looked for, in order: `./oceanbridge.toml`, the user's
/// `$XDG_CONFIG_HOME/oceanbridge/oceanbridge.toml` (`~/.config/...`), then
/// `/etc/oceanbridge/oceanbridge.toml`.
pub fn search_path() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from(FILE_NAME)];
    if let Some(dir) = dirs::config_dir() {
        paths.push(dir.join("oceanbridge").join(FILE_NAME));
    }
    paths.push(PathBuf::from(SYSTEM_CONFIG));
    paths
}

/// Where `oceanbridge init` writes when not told: the user's config directory (root: the
/// system file, which the packaged service reads).
pub fn default_init_path() -> PathBuf {
    if is_root() {
        return PathBuf::from(SYSTEM_CONFIG);
    }
    dirs::config_dir()
        .map(|d| d.join("oceanbridge").join(FILE_NAME))
        .unwrap_or_else(|| PathBuf::from(FILE_NAME))
}

#[cfg(unix)]
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

/// No config was named and none was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "no config file (looked for {looked}); create one with `oceanbridge init`, or pass --config FILE"
)]
pub struct NoConfig {
    looked: String,
}

/// The file to read: `explicit` if given, else the first of [`search_path`] that exists.
pub fn find(explicit: Option<&Path>) -> Result<PathBuf, NoConfig> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let paths = search_path();
    paths
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| NoConfig {
            looked: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}
