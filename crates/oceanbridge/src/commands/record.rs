//! `oceanbridge record [--config FILE] [--data-dir DIR] --out FILE [--duration S]`: raw
//! payloads from the configured source (the EcoFlow cloud, or fleet mode's broker) to a
//! JSON-lines file (`{"topic","time","hex"}` per line), for bug reports and benchmarks
//! (`oceanbridge replay`). The config is found and the state directory locked as for
//! `run` (`runtime::Service`), so a recording keeps the installation's MQTT client id
//! (protocol §9) and never runs beside a bridge on the same directory. The file holds
//! serial numbers and the account's user id (in the topics): it is created owner-only
//! (0600).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use runtime::Service;
use sources::RecordLine;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::common::{ConfigArg, DataDirArg, LogArg};

/// Arguments of `oceanbridge record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Output file (JSON lines); `-` for stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    #[command(flatten)]
    pub log: LogArg,
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let (config, dir) =
        runtime::service::load_config(args.config.config.as_deref(), args.data_dir.data_dir)?;
    crate::logging::init(&args.log.log_level);
    // Locked before the output file is touched: a refused recording truncates nothing.
    let service = Service::from_config(config, &dir)?;
    let out: Box<dyn Write + Send> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        let file = owner_only(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        Box::new(std::io::LineWriter::new(file))
    };
    super::common::block_on(record(&service, out, args.duration))?
}

/// Creates (or truncates) `path` with mode 0600; an existing file is tightened to 0600.
fn owner_only(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    runtime::data_dir::tighten_or_warn(path, 0o600);
    Ok(file)
}

async fn record(
    service: &Service,
    mut out: Box<dyn Write + Send>,
    duration: Option<f64>,
) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    runtime::shutdown::cancel_on_signal(shutdown.clone());
    runtime::shutdown::cancel_after(shutdown.clone(), duration);
    let (tx, mut rx) = mpsc::channel(service.config().pipeline.queue.max(1));
    let source = service.source(tx)?;
    let source_task = tokio::spawn(source.run(shutdown.clone()));
    let mut written = 0u64;
    let mut write_error = None;
    while let Some(raw) = rx.recv().await {
        let line = RecordLine::from_raw(&raw).to_json();
        if let Err(e) = writeln!(out, "{line}") {
            write_error = Some(e);
            shutdown.cancel();
            break;
        }
        written += 1;
    }
    let _ = out.flush();
    let source_result = source_task.await;
    if let Some(e) = write_error {
        return Err(anyhow::anyhow!("cannot write the record file: {e}"));
    }
    eprintln!("oceanbridge record: {written} payloads written");
    match source_result {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Err(anyhow::anyhow!(e)),
        Err(e) => Err(anyhow::anyhow!("source task failed: {e}")),
    }
}
