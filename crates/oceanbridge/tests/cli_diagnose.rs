//! The bug-report bundle as a user meets it: `oceanbridge run` against the simulator (in
//! this test process) with a dashboard token; the dashboard's download over real HTTP
//! (token required; `.tar.gz` and `.zip`); `oceanbridge diagnose` fetching the running
//! bridge's bundle; then, the bridge stopped, `diagnose` building one from the state
//! directory's capture. Every file of every bundle is unpacked and scanned: no serial
//! (device or battery pack), user id or e-mail address remains unmasked — as text, as
//! hex, or inside a captured frame (XOR-ed pdata included).

mod support;

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use prost::Message as _;
use simulator::{Simulator, SimulatorConfig};
use sources::RawPayload;
use support::{Bridge, Publisher, STARTUP, bin, numbers, source_section, start_sim, web_addr};
use testkit::Proc;
use testkit::http::blocking::get_json;

const PASSWORD: &str = "pw-diag-0c41-never-print";
const TOKEN: &str = "diag-token-5b1e";

type Files = Vec<(String, Vec<u8>)>;

fn unpack_tar_gz(bytes: &[u8]) -> Files {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = Vec::new();
    for entry in tar.entries().expect("a tar.gz") {
        let mut entry = entry.expect("entry");
        let mut body = Vec::new();
        entry.read_to_end(&mut body).expect("read");
        out.push((entry.path().expect("path").display().to_string(), body));
    }
    out
}

fn unpack_zip(bytes: Vec<u8>) -> Files {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut file = zip.by_index(i).expect("entry");
            let mut body = Vec::new();
            file.read_to_end(&mut body).expect("read");
            (file.name().expect("name").to_string(), body)
        })
        .collect()
}

/// The file names without the one folder they all sit in.
fn names(files: &Files) -> Vec<String> {
    let folder = files[0].0.split('/').next().expect("folder").to_string();
    assert!(folder.starts_with("oceanbridge-diagnostics-"), "{folder}");
    files
        .iter()
        .map(|(n, _)| {
            n.strip_prefix(&format!("{folder}/"))
                .unwrap_or_else(|| panic!("{n} outside {folder}"))
                .to_string()
        })
        .collect()
}

fn file(files: &Files, name: &str) -> String {
    let (_, body) = files
        .iter()
        .find(|(n, _)| n.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("no {name}"));
    String::from_utf8_lossy(body).into_owned()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn assert_clean(files: &Files, secrets: &[String]) {
    for (name, bytes) in files {
        for s in secrets {
            assert!(!contains(bytes, s.as_bytes()), "{s} in {name}");
            assert!(
                !contains(bytes, hex::encode(s).as_bytes()),
                "{s} as hex in {name}"
            );
        }
        if !name.contains("/capture/") {
            continue;
        }
        let (lines, bad) = sources::record::read_lines(bytes.as_slice());
        assert!(bad.is_empty() && !lines.is_empty(), "{name}: {bad:?}");
        for raw in lines {
            let Ok(frames) = protocol::pb::Frames::decode(raw.payload.as_ref()) else {
                continue;
            };
            for h in frames.header {
                let key = if h.enc_type == Some(1) && h.src != Some(32) {
                    h.seq.unwrap_or(0) as u8
                } else {
                    0
                };
                let plain: Vec<u8> = h
                    .pdata
                    .unwrap_or_default()
                    .iter()
                    .map(|b| b ^ key)
                    .collect();
                for s in secrets {
                    assert!(!contains(&plain, s.as_bytes()), "{s} in a frame of {name}");
                }
            }
        }
    }
}

/// What must not appear, learnt from the unmasked capture on disk and the simulator.
fn secrets(sim: &Simulator, capture: &Path) -> Vec<String> {
    let d = SimulatorConfig::default();
    let mut out = vec![d.email, d.user_id];
    out.extend(sim.devices().iter().cloned());
    let raw: Vec<RawPayload> = runtime::capture::segments(capture)
        .iter()
        .flat_map(|s| {
            let text = std::fs::read(&s.path).expect("segment");
            sources::record::read_lines(text.as_slice()).0
        })
        .collect();
    for r in &raw {
        if let Ok(d) = sources::decode_raw(&r.topic, &r.payload) {
            for u in d.updates.iter().filter(|u| u.state.name == "bpSn") {
                out.push(u.value.to_string().trim_matches('"').to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    assert!(out.len() >= 5, "device, two packs, user, e-mail: {out:?}");
    out
}

/// `GET path` with the bytes of the body (the testkit client reads text).
fn download(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, String, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tls = connect::tls::client_config(None).expect("TLS config");
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .build()
            .expect("client");
        let mut req = client.get(format!("http://{addr}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("GET");
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let (ty, disposition) = (header("content-type"), header("content-disposition"));
        let status = r.status().as_u16();
        (
            status,
            ty,
            disposition,
            r.bytes().await.expect("body").to_vec(),
        )
    })
}

fn diagnose(config: &Path, args: &[&str]) -> (bool, String) {
    let out = bin()
        .arg("diagnose")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("OCEANBRIDGE_WEB_TOKEN", TOKEN)
        .output()
        .expect("diagnose");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dashboard_download_and_diagnose_mask_every_serial_and_id() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt
        .block_on(Simulator::start(SimulatorConfig {
            password: PASSWORD.into(),
            ..SimulatorConfig::default()
        }))
        .expect("simulator");
    let dir = testkit::temp_dir("cli-diagnose");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_cert_pem()).expect("CA");
    let config = dir.path().join("oceanbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nway_in = \"app\"\napi_url = \"{}\"\nca_file = \"{}\"\nemail = \"{}\"\n\
             devices = [\"{}\"]\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n\n\
             [web]\nbind = \"127.0.0.1:0\"\n",
            sim.http_base_url(),
            ca.display(),
            SimulatorConfig::default().email,
            sim.devices()[0],
        ),
    )
    .expect("config");
    let state = dir.path().join("state");
    let mut cmd = bin();
    cmd.args(["run", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&state)
        .env("OCEANBRIDGE_PASSWORD", PASSWORD)
        .env("OCEANBRIDGE_WEB_TOKEN", TOKEN);
    let mut run = Proc::spawn(cmd);
    let addr = web_addr(&run, STARTUP);
    let auth = format!("Bearer {TOKEN}");
    let found = testkit::wait_for_blocking(STARTUP, || {
        let states = get_json(addr, "/api/states", &[("Authorization", &auth)]);
        (numbers(&states).len() >= 100).then_some(())
    });
    assert!(found.is_some(), "no states:\n{}", run.stderr());

    // The dashboard's link, over real HTTP: behind the token, an attachment.
    assert_eq!(download(addr, "/api/diagnostics", None).0, 401);
    let (status, ty, disposition, body) = download(addr, "/api/diagnostics", Some(TOKEN));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ty, "application/gzip");
    assert!(
        disposition.starts_with("attachment; filename=\"oceanbridge-diagnostics-")
            && disposition.ends_with(".tar.gz\""),
        "{disposition}"
    );
    let web_tgz = unpack_tar_gz(&body);
    let mut expected = vec![
        "README.txt",
        "version.txt",
        "config.toml",
        "devices.json",
        "counters.json",
        "metrics.txt",
        "last-errors.json",
        "commands.json",
    ];
    let got = names(&web_tgz);
    assert!(
        got.iter().any(|n| n.starts_with("capture/capture-")),
        "{got:?}"
    );
    expected.retain(|n| !got.iter().any(|g| g == n));
    assert!(expected.is_empty(), "missing {expected:?} in {got:?}");
    let (status, ty, _, body) = download(addr, "/api/diagnostics?format=zip", Some(TOKEN));
    assert_eq!((status, ty.as_str()), (200, "application/zip"));
    let web_zip = unpack_zip(body);
    assert_eq!(names(&web_zip).len(), got.len());

    // diagnose while the bridge runs: the bridge's own bundle.
    let live_zip = dir.path().join("live.zip");
    let url = format!("http://{addr}");
    let (ok, log) = diagnose(
        &config,
        &["--url", &url, "-o", live_zip.to_str().expect("utf-8")],
    );
    assert!(ok && log.contains("from the running bridge"), "{log}");
    let live = unpack_zip(std::fs::read(&live_zip).expect("live.zip"));

    run.sigterm();
    assert!(
        run.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        run.stderr()
    );

    // The bridge gone: built from the config and the state directory's capture.
    let offline_tgz = dir.path().join("offline.tar.gz");
    let (ok, log) = diagnose(
        &config,
        &[
            "--data-dir",
            state.to_str().expect("utf-8"),
            "-o",
            offline_tgz.to_str().expect("utf-8"),
        ],
    );
    assert!(ok && log.contains("from the files"), "{log}");
    let offline = unpack_tar_gz(&std::fs::read(&offline_tgz).expect("offline bundle"));
    let readme = file(&offline, "README.txt");
    assert!(readme.contains("built from the files"), "{readme}");

    let secrets = secrets(&sim, &state.join("capture"));
    let masked = String::from_utf8(runtime::diagnostics::mask::mask_value(
        sim.devices()[0].as_bytes(),
    ))
    .expect("ascii");
    for (bundle, from) in [
        (&web_tgz, "running bridge"),
        (&web_zip, "running bridge"),
        (&live, "running bridge"),
        (&offline, "capture"),
    ] {
        assert_clean(bundle, &secrets);
        let devices = file(bundle, "devices.json");
        assert!(
            devices.contains(from) && devices.contains(&masked),
            "{devices:.400}"
        );
        assert!(devices.contains("\"stage\"") && devices.contains("age_secs"));
        let config = file(bundle, "config.toml");
        assert!(
            !config.contains(PASSWORD) && !config.contains(TOKEN),
            "{config}"
        );
        assert!(file(bundle, "version.txt").starts_with("oceanbridge "));
    }
    assert!(file(&live, "last-errors.json").contains("\"entries\""));
    rt.block_on(sim.shutdown());
}

/// Every file under `dir` (itself included) with its permission bits.
#[cfg(unix)]
fn modes(dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = vec![(
        dir.to_path_buf(),
        std::fs::metadata(dir).expect("dir").permissions().mode() & 0o777,
    )];
    for entry in std::fs::read_dir(dir).expect("list").filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(modes(&path));
        } else {
            let mode = entry.metadata().expect("meta").permissions().mode() & 0o777;
            out.push((path, mode));
        }
    }
    out
}

/// What the EcoFlow app (here: another MQTT client) publishes on the device's `set`
/// topic lands in the capture as a command and in the bundle's commands.json, named and
/// marked as not the bridge's; it is never decoded as a reading (a full report on the set
/// topic, with another serial in its header, makes no device). Every file the state
/// directory holds is owner-only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_apps_commands_are_captured_for_bug_reports_never_read() {
    let device = "HC31ZDH5ZF220777";
    let sim = start_sim(&[device], 20.0).await;
    let dir = testkit::temp_dir("diag-set");
    let ca = support::write_ca(&sim, dir.path());
    let config = format!(
        "{}\n[web]\nbind = \"127.0.0.1:0\"\ntoken = {TOKEN:?}\n",
        source_section(&sim, &[device], Some(&ca))
    );
    let bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let live = testkit::wait_for_async(STARTUP, async || {
        let states = bridge.get_json("/api/states", Some(TOKEN)).await;
        (numbers(&states).len() >= 100).then_some(())
    })
    .await;
    assert!(live.is_some(), "no states:\n{}", bridge.stderr());

    // The app sets the work mode; then a report-shaped frame for another serial.
    let app = Publisher::connect(&sim, "the-app").await;
    let set_topic = protocol::topics::set_topic(sim.user_id(), device);
    let request = protocol::SetRequest::WorkMode {
        mode: protocol::WorkMode::ALL[1],
    };
    let frame = protocol::control::encode_set(&request, device, 4242);
    app.publish(&set_topic, frame.clone()).await;
    let fake = "HC31FAKE00000001";
    let report = testkit::feed::Feed::new(fake, 1).full_payload(0);
    app.publish(&set_topic, report.clone()).await;

    let capture = dir.path().join("state").join("capture");
    let lines = testkit::wait_for_async(Duration::from_secs(60), async || {
        let lines: Vec<serde_json::Value> = runtime::capture::segments(&capture)
            .iter()
            .flat_map(|s| {
                std::fs::read_to_string(&s.path)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect::<Vec<_>>()
            })
            .filter(|l: &serde_json::Value| {
                l["hex"] == hex::encode(&report) || l["hex"] == hex::encode(&frame)
            })
            .collect();
        (lines.len() == 2).then_some(lines)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the app's frames are not in the capture:\n{}",
            bridge.stderr()
        )
    });
    for line in &lines {
        assert_eq!(line["topic"], set_topic.as_str(), "{line}");
        assert!(runtime::capture::is_command_line(line), "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["cmd"] == serde_json::json!(["96/98"]))
    );
    let devices = bridge.get_json("/api/devices", Some(TOKEN)).await;
    assert!(
        !devices.to_string().contains(fake),
        "a command was read as a report: {devices}"
    );

    // The bundle names the app's write and says it was not the bridge's.
    let out = dir.path().join("bundle.tar.gz");
    let (ok, log) = diagnose(
        &dir.path().join("oceanbridge.toml"),
        &[
            "--url",
            &format!("http://{}", bridge.web),
            "-o",
            out.to_str().expect("utf-8"),
        ],
    );
    assert!(ok && log.contains("from the running bridge"), "{log}");
    let bundle = unpack_tar_gz(&std::fs::read(&out).expect("bundle"));
    let commands: serde_json::Value =
        serde_json::from_str(&file(&bundle, "commands.json")).expect("json");
    let listed = commands["commands"].as_array().expect("commands");
    let write = listed
        .iter()
        .find(|c| c["cmd"] == "96/98")
        .unwrap_or_else(|| panic!("{commands:#}"));
    assert!(
        write["what"]
            .as_str()
            .is_some_and(|w| w.contains("work_mode")),
        "{write}"
    );
    assert!(
        write["by"]
            .as_str()
            .is_some_and(|b| b.starts_with("not oceanbridge")),
        "{write}"
    );
    assert!(!file(&bundle, "commands.json").contains(device), "masked");

    // Every file of the state directory is the owner's alone.
    for (path, mode) in modes(&dir.path().join("state")) {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
    drop(app);
    sim.shutdown().await;
}
