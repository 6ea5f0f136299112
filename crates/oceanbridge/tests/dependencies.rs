//! The dependency tree, checked offline on every `cargo test` (docs/security.md,
//! "Dependencies"): `deny.toml`'s bans and sources against `Cargo.lock`, and the reasons
//! given there for the ignored advisories still true. `scripts/deny.sh` runs the full
//! cargo-deny check (licenses, and advisories against a local copy of the database); this
//! test needs neither cargo-deny nor a network, so a regression shows up in CI too.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn workspace_file(name: &str) -> toml::Table {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    text.parse()
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// One `[[package]]` of Cargo.lock: name, version, source and what it depends on, as
/// Cargo.lock writes it: "name", or "name version" when two versions are in the tree.
struct Locked {
    name: String,
    version: String,
    source: Option<String>,
    dependencies: Vec<String>,
}

fn lock() -> Vec<Locked> {
    let lock = workspace_file("Cargo.lock");
    let packages = lock["package"].as_array().expect("Cargo.lock has packages");
    packages
        .iter()
        .map(|package| {
            let text = |key: &str| package.get(key).and_then(|v| v.as_str()).map(String::from);
            Locked {
                name: text("name").expect("a locked package has a name"),
                version: text("version").expect("a locked package has a version"),
                source: text("source"),
                dependencies: package
                    .get("dependencies")
                    .and_then(|d| d.as_array())
                    .map(|deps| {
                        deps.iter()
                            .filter_map(|d| d.as_str())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[test]
fn no_banned_crate_is_in_the_tree() {
    let deny = workspace_file("deny.toml");
    let banned: BTreeSet<&str> = deny["bans"]["deny"]
        .as_array()
        .expect("deny.toml [bans] deny")
        .iter()
        .filter_map(|entry| entry.get("name").and_then(|n| n.as_str()))
        .collect();
    assert!(banned.contains("openssl-sys"), "deny.toml bans OpenSSL");
    let found: Vec<String> = lock()
        .into_iter()
        .filter(|p| banned.contains(p.name.as_str()))
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    assert!(found.is_empty(), "banned crates in Cargo.lock: {found:?}");
}

#[test]
fn every_crate_comes_from_an_allowed_registry_or_the_workspace() {
    let deny = workspace_file("deny.toml");
    let allowed: Vec<String> = deny["sources"]["allow-registry"]
        .as_array()
        .expect("deny.toml [sources] allow-registry")
        .iter()
        .filter_map(|r| r.as_str())
        .map(|r| format!("registry+{r}"))
        .collect();
    let outside: Vec<String> = lock()
        .into_iter()
        .filter_map(|p| match &p.source {
            None => None, // a path dependency: the workspace's own crates
            Some(source) if allowed.contains(source) => None,
            Some(source) => Some(format!("{} {} from {source}", p.name, p.version)),
        })
        .collect();
    assert!(outside.is_empty(), "crates from elsewhere: {outside:?}");
}

/// deny.toml ignores advisories for `rustls-pemfile` and `rustls-webpki` 0.102 because only
/// rumqttc pulls them in (our code reads PEM with rustls-pki-types and verifies with
/// rustls' 0.103). If anything else starts to use them, that reason is gone.
#[test]
fn the_ignored_advisories_crates_still_come_only_through_rumqttc() {
    let packages = lock();
    let deny = workspace_file("deny.toml");
    let ignored = deny["advisories"]["ignore"].as_array().expect("ignores");
    assert_eq!(
        ignored.len(),
        5,
        "review this test when deny.toml's ignores change"
    );
    for (crate_name, old_version) in [("rustls-pemfile", None), ("rustls-webpki", Some("0.102."))] {
        let locked: Vec<&Locked> = packages
            .iter()
            .filter(|p| p.name == crate_name)
            .filter(|p| old_version.is_none_or(|v| p.version.starts_with(v)))
            .collect();
        if locked.is_empty() {
            continue; // gone from the tree: the ignore can go too (cargo-deny says so)
        }
        let users: BTreeSet<&str> = packages
            .iter()
            .filter(|p| {
                p.dependencies.iter().any(|d| {
                    let mut words = d.split(' ');
                    words.next() == Some(crate_name)
                        // With two versions in the tree a dependency names its version:
                        // only the old one counts (0.103 is rustls' own).
                        && old_version.is_none_or(|v| words.next().is_none_or(|w| w.starts_with(v)))
                })
            })
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            users,
            BTreeSet::from(["rumqttc"]),
            "{crate_name} is used by {users:?}"
        );
    }
}
