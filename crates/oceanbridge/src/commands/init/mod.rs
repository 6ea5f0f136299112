//! `oceanbridge init`: writes a commented config file. Asks for what is missing when run
//! on a terminal (dialoguer); fully by flags for scripts (`--non-interactive`, or stdin
//! not a terminal: a missing answer is an error naming its flag). Tests the login against
//! the cloud (protocol §1a/§1b) before writing, and on the open-API way in fills in the
//! account's devices from its device list (the app route has no such list: §1a).

#[cfg(test)]
mod defaults_tests;
mod template;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use connect::Secret;
use dialoguer::{Input, MultiSelect, Password, Select};
use sources::api::ApiClient;
use sources::login::{Authenticator, ListedDevice};
use sources::{CloudConfig, DEFAULT_API_URL, SourceObserver, WayIn};

use template::Answers;

/// Arguments of `oceanbridge init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Where to write. Default: ~/.config/oceanbridge/oceanbridge.toml
    /// (as root: /etc/oceanbridge/oceanbridge.toml, which the packaged service reads).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the file if it exists (its owner is kept; its mode becomes 0600 or stays
    /// stricter: it holds the password).
    #[arg(long)]
    pub force: bool,
    /// Never ask: a missing answer is an error naming its flag (also when stdin is not a terminal).
    #[arg(long)]
    pub non_interactive: bool,
    /// Way in: `app` (EcoFlow app account, all 216 states) or `open-api` (developer keys).
    #[arg(long, value_enum)]
    pub way_in: Option<WayInArg>,
    /// App account email.
    #[arg(long)]
    pub email: Option<String>,
    /// App account password (better in the environment than on a command line).
    #[arg(long, env = "OCEANBRIDGE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Developer open-API access key.
    #[arg(long)]
    pub access_key: Option<String>,
    /// Developer open-API secret key.
    #[arg(long, env = "OCEANBRIDGE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Serial number of a device; repeat for several. Open API: default every listed device.
    #[arg(long = "device", value_name = "SN")]
    pub devices: Vec<String>,
    /// EcoFlow API base URL (Europe: https://api-e.ecoflow.com).
    #[arg(long, value_name = "URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// Extra CA certificate(s) to trust, PEM (e.g. a private test cloud).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Leave the password / secret key out of the file: the service then needs
    /// OCEANBRIDGE_PASSWORD / OCEANBRIDGE_SECRET_KEY in its environment.
    #[arg(long)]
    pub secrets_in_env: bool,
    /// Do not test the login before writing.
    #[arg(long)]
    pub no_login_test: bool,
    /// Dashboard / metrics address. Another address than loopback (e.g. 0.0.0.0:8080)
    /// makes the dashboard reachable from the LAN: it needs the token init writes.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub web_bind: String,
    /// The dashboard token (what browsers and scrapers send as `Authorization: Bearer`).
    /// Default: a new random one.
    #[arg(long, env = "OCEANBRIDGE_WEB_TOKEN", hide_env_values = true)]
    pub web_token: Option<String>,
    /// Home Assistant broker URL (mqtt:// or mqtts://); enables MQTT discovery.
    #[arg(long, value_name = "URL")]
    pub home_assistant: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WayInArg {
    App,
    OpenApi,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(runtime::config_file::default_init_path);
    if output.exists() && !args.force {
        bail!(
            "{} exists; pass --force to replace it, or check it with `oceanbridge check-config --config {}`",
            output.display(),
            output.display()
        );
    }
    let ask = Ask {
        interactive: !args.non_interactive && std::io::stdin().is_terminal(),
    };
    let way_in = match args.way_in {
        Some(WayInArg::App) => WayIn::App,
        Some(WayInArg::OpenApi) => WayIn::OpenApi,
        None if ask.interactive => {
            let choice = Select::new()
                .with_prompt("How does oceanbridge reach your system?")
                .items([
                    "EcoFlow app account (email + password; all 216 states)",
                    "Developer open API (access key + secret key)",
                ])
                .default(0)
                .interact()?;
            if choice == 0 {
                WayIn::App
            } else {
                WayIn::OpenApi
            }
        }
        None => WayIn::App,
    };
    let mut cloud = CloudConfig {
        way_in,
        api_url: args.api_url.clone(),
        ca_file: args.ca_file.clone(),
        ..CloudConfig::default()
    };
    match way_in {
        WayIn::App => {
            cloud.email = ask.text(args.email.clone(), "--email", "EcoFlow account email")?;
            cloud.password = Secret::new(ask.secret(
                args.password.clone(),
                "--password (or OCEANBRIDGE_PASSWORD)",
                "EcoFlow account password",
            )?);
        }
        WayIn::OpenApi => {
            cloud.access_key = ask.text(args.access_key.clone(), "--access-key", "Access key")?;
            cloud.secret_key = Secret::new(ask.secret(
                args.secret_key.clone(),
                "--secret-key (or OCEANBRIDGE_SECRET_KEY)",
                "Secret key",
            )?);
        }
    }
    let listed = if args.no_login_test {
        Vec::new()
    } else {
        eprintln!("oceanbridge: testing the login at {} ...", cloud.api_url);
        let listed = test_login(&cloud)?;
        eprintln!("oceanbridge: login OK");
        listed
    };
    let devices = choose_devices(&ask, args.devices.clone(), way_in, &listed)?;
    let web_token = args
        .web_token
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(new_token);
    let answers = Answers {
        way_in,
        email: cloud.email.clone(),
        password: (!args.secrets_in_env && way_in == WayIn::App)
            .then(|| cloud.password.expose().to_string()),
        access_key: cloud.access_key.clone(),
        secret_key: (!args.secrets_in_env && way_in == WayIn::OpenApi)
            .then(|| cloud.secret_key.expose().to_string()),
        devices,
        api_url: cloud.api_url.clone(),
        ca_file: args
            .ca_file
            .as_ref()
            .map(|p| absolute(p).display().to_string()),
        web_bind: args.web_bind.clone(),
        web_token: (!args.secrets_in_env).then(|| web_token.clone()),
        home_assistant: args.home_assistant.clone(),
    };
    let text = template::render(&answers);
    // The file must load as `run` will read it (without the environment).
    let config = runtime::Config::from_toml(&text, |_| None)
        .map_err(|e| anyhow::anyhow!("the answers do not make a valid config: {e}"))?;
    write_config(&output, &text)?;
    let bind = config.web.bind;
    if !bind.ip().is_loopback() {
        eprintln!(
            "oceanbridge: the dashboard will listen on {bind}: reachable from your LAN, and \
             every request needs the token (`Authorization: Bearer <token>`; the dashboard \
             asks for it once){}",
            if args.secrets_in_env {
                ""
            } else {
                ". The token is [web] token in the file"
            }
        );
    }
    if args.secrets_in_env {
        // Not in the file: the one chance to see it (put it in the service's environment).
        eprintln!(
            "oceanbridge: dashboard token (set it in the environment): OCEANBRIDGE_WEB_TOKEN={web_token}"
        );
    }
    eprintln!(
        "oceanbridge: wrote {} ({} device{}: {})\n  check it:  oceanbridge check-config --config {}\n  start it:  oceanbridge run --config {}   (package: systemctl enable --now oceanbridge)",
        output.display(),
        answers.devices.len(),
        if answers.devices.len() == 1 { "" } else { "s" },
        answers.devices.join(", "),
        output.display(),
        output.display(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks on a terminal, or insists on the flag.
struct Ask {
    interactive: bool,
}

impl Ask {
    fn text(&self, given: Option<String>, flag: &str, prompt: &str) -> anyhow::Result<String> {
        match given.filter(|s| !s.trim().is_empty()) {
            Some(v) => Ok(v.trim().to_string()),
            None if self.interactive => Ok(Input::<String>::new()
                .with_prompt(prompt)
                .interact_text()?
                .trim()
                .to_string()),
            None => bail!("{flag} is required (no terminal to ask on)"),
        }
    }

    fn secret(&self, given: Option<String>, flag: &str, prompt: &str) -> anyhow::Result<String> {
        match given.filter(|s| !s.is_empty()) {
            Some(v) => Ok(v),
            None if self.interactive => Ok(Password::new().with_prompt(prompt).interact()?),
            None => bail!("{flag} is required (no terminal to ask on)"),
        }
    }
}

/// Logs in (app: login + certification; open API: signed certification) and lists the
/// account's devices where the route has a list (open API only).
fn test_login(cloud: &CloudConfig) -> anyhow::Result<Vec<ListedDevice>> {
    let ca = match &cloud.ca_file {
        Some(path) => Some(connect::tls::read_ca_file(path)?),
        None => None,
    };
    let tls = connect::tls::client_config(ca.as_deref())?;
    let api = ApiClient::new(&cloud.api_url, tls, Duration::from_secs(15))?;
    struct Quiet;
    impl SourceObserver for Quiet {}
    let mut auth = Authenticator::new(api, cloud, Arc::new(Quiet));
    super::common::block_on(async {
        auth.credentials().await.map_err(|e| login_error(&e))?;
        match cloud.way_in {
            WayIn::App => Ok(Vec::new()),
            WayIn::OpenApi => auth
                .device_list()
                .await
                .map_err(|e| anyhow::anyhow!("login OK, but the device list failed: {e}")),
        }
    })?
}

/// The login error with what to try (protocol §9: accounts live in one region, and the
/// wrong region answers as if the password were wrong).
fn login_error(e: &sources::SourceError) -> anyhow::Error {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("password") || lower.contains("doesn't exist") {
        " (check the password; accounts live in one region: try --api-url https://api-e.ecoflow.com or https://api.ecoflow.com)"
    } else if lower.contains("accesskey") || lower.contains("8513") || lower.contains("8521") {
        " (check the access and secret keys from the EcoFlow developer portal)"
    } else {
        ""
    };
    anyhow::anyhow!("login test failed: {text}{hint}; nothing written (--no-login-test skips it)")
}

fn choose_devices(
    ask: &Ask,
    given: Vec<String>,
    way_in: WayIn,
    listed: &[ListedDevice],
) -> anyhow::Result<Vec<String>> {
    let given: Vec<String> = given
        .iter()
        .flat_map(|d| d.split(','))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    if !given.is_empty() {
        return Ok(given);
    }
    if !listed.is_empty() {
        if !ask.interactive {
            return Ok(listed.iter().map(|d| d.sn.clone()).collect());
        }
        let items: Vec<String> = listed
            .iter()
            .map(|d| {
                let state = if d.online { "online" } else { "offline" };
                format!("{} {} ({state})", d.sn, d.product_name)
            })
            .collect();
        let picked = MultiSelect::new()
            .with_prompt("Devices to bridge (space toggles, enter accepts)")
            .items(&items)
            .defaults(&vec![true; items.len()])
            .interact()?;
        return Ok(picked.into_iter().map(|i| listed[i].sn.clone()).collect());
    }
    match way_in {
        // The open API bridges every listed device when none is named.
        WayIn::OpenApi => Ok(Vec::new()),
        WayIn::App => {
            let text = ask.text(
                None,
                "--device SN",
                "Serial number(s) of your PowerOcean Fit (app → device → settings), comma-separated",
            )?;
            let sns: Vec<String> = text
                .split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect();
            if sns.is_empty() {
                bail!("at least one serial number is needed for the app way in");
            }
            Ok(sns)
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A new dashboard token: 32 random bytes, hex (what `openssl rand -hex 32` makes).
fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Writes the file atomically, owner-only (it holds a password and a token): a new
/// temporary file in the same folder, then a rename. A replaced file keeps its owner and
/// group (the package's /etc file is root's: systemd hands the service a copy through
/// LoadCredential) and becomes 0600 — or stays stricter (0400) — whatever it was before.
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    let previous = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    runtime::data_dir::write_atomic(path, text.as_bytes())?;
    #[cfg(unix)]
    if let Some(old) = previous {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let mode = old.permissions().mode() & 0o600;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the permissions of {}", path.display()))?;
        // Keeping the owner works as root (the packaged /etc file); as a user it is ours.
        let _ = std::os::unix::fs::chown(path, Some(old.uid()), Some(old.gid()));
    }
    #[cfg(not(unix))]
    let _ = previous;
    Ok(())
}
