//! Fleet benchmarks of the real `oceanbridge run` binary on the local mosquitto
//! (127.0.0.1:1883, loopback only): (b) end-to-end latency broker → store → SSE at a fixed
//! rate, (c) many devices at 1 msg/s each (loss, RSS, CPU) — on the system mosquitto and on
//! a private one tuned like a fleet broker, with `/metrics` scrapes (all states, health set,
//! one device) — (d) idle RSS and start-up time, (e) PostgreSQL ingest and (f) throughput
//! per core at the point of first loss.
//! Prints one markdown table. `scripts/bench.sh` builds and runs it.
//!
//! ```text
//! fleet_bench [--bin PATH] [--only latency|fleet|fleet-tuned|idle|postgres|throughput] [--rate 1000] [--secs 10]
//!             [--devices 10000] [--rounds 20] [--qos 0] [--postgres URL]
//! ```

mod bridge;
mod broker;
mod postgres;
mod scenarios;
mod scrape;
mod throughput;

use std::path::PathBuf;

use bridge::Error;

/// One line of the result table.
pub struct Row {
    pub bench: &'static str,
    pub figure: String,
    pub value: String,
    pub target: &'static str,
    /// `None`: informational, no target.
    pub pass: Option<bool>,
}

impl Row {
    pub fn new(bench: &'static str, figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            bench,
            figure: figure.into(),
            value: value.into(),
            target: "",
            pass: None,
        }
    }

    pub fn target(mut self, target: &'static str, pass: bool) -> Row {
        self.target = target;
        self.pass = Some(pass);
        self
    }
}

pub struct Args {
    pub bin: PathBuf,
    pub only: Option<String>,
    pub rate: u32,
    pub secs: u32,
    pub devices: usize,
    pub rounds: u32,
    /// Subscription QoS of the bridge (0 or 1).
    pub qos: u8,
    /// PostgreSQL for the history-ingest case (skipped without).
    pub postgres: Option<String>,
}

fn parse_args() -> Result<Args, Error> {
    let default_bin = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("oceanbridge"))
        .ok_or("cannot locate the oceanbridge binary; pass --bin")?;
    let mut args = Args {
        bin: default_bin,
        only: None,
        rate: 1000,
        secs: 10,
        devices: 10_000,
        rounds: 20,
        qos: 0,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bin" => args.bin = value()?.into(),
            "--only" => args.only = Some(value()?),
            "--rate" => args.rate = value()?.parse()?,
            "--secs" => args.secs = value()?.parse()?,
            "--devices" => args.devices = value()?.parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--qos" => args.qos = value()?.parse()?,
            "--postgres" => args.postgres = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "fleet_bench [--bin PATH] [--only latency|fleet|fleet-tuned|idle|postgres|throughput] [--rate N] [--secs N] [--devices N] [--rounds N] [--qos 0|1] [--postgres URL]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if !args.bin.exists() {
        return Err(format!(
            "{} not found (cargo build --release -p oceanbridge)",
            args.bin.display()
        )
        .into());
    }
    if args.rate == 0 || args.secs == 0 || args.devices == 0 || args.rounds == 0 {
        return Err("rate, secs, devices and rounds must be ≥ 1".into());
    }
    Ok(args)
}

fn print_table(rows: &[Row]) {
    println!("| bench | figure | measured | target | result |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let result = match r.pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {result} |",
            r.bench, r.figure, r.value, r.target
        );
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fleet_bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fleet_bench: runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let wanted = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    let mut rows = Vec::new();
    let mut failed = false;
    runtime.block_on(async {
        type Scenario = for<'a> fn(
            &'a Args,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<Row>, Error>> + 'a>,
        >;
        let all: [(&str, Scenario); 6] = [
            ("latency", |a| Box::pin(scenarios::latency(a))),
            ("fleet", |a| Box::pin(scenarios::fleet_default(a))),
            ("fleet-tuned", |a| Box::pin(scenarios::fleet_tuned(a))),
            ("idle", |a| Box::pin(scenarios::idle(a))),
            ("postgres", |a| Box::pin(postgres::ingest(a))),
            ("throughput", |a| Box::pin(throughput::throughput(a))),
        ];
        for (name, scenario) in all {
            if !wanted(name) || (name == "postgres" && args.postgres.is_none()) {
                continue;
            }
            eprintln!("fleet_bench: {name} …");
            match scenario(&args).await {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    eprintln!("fleet_bench: {name} failed: {e}");
                    rows.push(Row::new("error", name, e.to_string()).target("runs", false));
                    failed = true;
                }
            }
        }
    });
    print_table(&rows);
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
