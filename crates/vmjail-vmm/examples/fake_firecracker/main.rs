//! A stand-in VMM for launch tests of the jail path without a real
//! Firecracker: it serves Firecracker's API on `--api-sock` (blocking, one
//! connection at a time, like Firecracker) and checks what only a jailed VMM
//! can check — that every path it is handed opens *inside its chroot*.
//! `SendCtrlAltDel` makes it exit, as a guest reboot ends Firecracker. Like
//! Firecracker it opens the tap it is given and holds it on another thread
//! than the main one, which exits first (see `devices.rs`).

mod devices;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};

use serde_json::{json, Value};

#[derive(Default)]
struct Vmm {
    started: bool,
    paused: bool,
    log: Option<std::fs::File>,
    metrics: Option<std::fs::File>,
    drives: HashMap<String, Value>,
    vsock: Option<UnixListener>,
    devices: Option<devices::Devices>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let socket = args
        .iter()
        .position(|a| a == "--api-sock")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "/run/firecracker.socket".into());
    let listener = match UnixListener::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake_firecracker: binding {socket}: {e}");
            std::process::exit(1);
        }
    };
    let mut vmm = Vmm {
        devices: Some(devices::Devices::start()),
        ..Vmm::default()
    };
    for stream in listener.incoming().flatten() {
        if serve(stream, &mut vmm) {
            match vmm.devices.take() {
                Some(devices) => devices.shutdown(),
                None => std::process::exit(0),
            }
        }
    }
}

/// Serve one connection; true when the VMM should exit.
fn serve(stream: UnixStream, vmm: &mut Vmm) -> bool {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return false;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return false;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (status, answer, exit) = handle(vmm, &method, &path, &body);
        let text = answer.map(|a| a.to_string()).unwrap_or_default();
        let reason = if status < 300 { "OK" } else { "Bad Request" };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return exit;
        }
        if exit {
            return true;
        }
    }
}

fn fault(message: String) -> (u16, Option<Value>, bool) {
    (400, Some(json!({ "fault_message": message })), false)
}

fn opens(path: &str, write: bool) -> Result<std::fs::File, String> {
    std::fs::File::options()
        .read(true)
        .write(write)
        // A FIFO opened for writing must not wait for a reader.
        .custom_flags(if write { libc::O_NONBLOCK } else { 0 })
        .open(path)
        .map_err(|e| format!("{path} does not open in the jail: {e}"))
}

fn handle(vmm: &mut Vmm, method: &str, path: &str, body: &Value) -> (u16, Option<Value>, bool) {
    let text = |key: &str| body[key].as_str().unwrap_or("").to_owned();
    match (method, path) {
        ("GET", "/") => {
            let state = match (vmm.started, vmm.paused) {
                (false, _) => "Not started",
                (true, false) => "Running",
                (true, true) => "Paused",
            };
            (
                200,
                Some(
                    json!({ "app_name": "Firecracker", "id": "fake", "state": state, "vmm_version": "0.0.0-fake" }),
                ),
                false,
            )
        }
        ("PUT", "/logger") => match opens(&text("log_path"), true) {
            Ok(mut file) => {
                let _ = writeln!(file, "fake_firecracker: logger configured");
                vmm.log = Some(file);
                (204, None, false)
            }
            Err(e) => fault(e),
        },
        ("PUT", "/metrics") => match opens(&text("metrics_path"), true) {
            Ok(file) => {
                vmm.metrics = Some(file);
                (204, None, false)
            }
            Err(e) => fault(e),
        },
        ("PUT", "/boot-source") => {
            let mut paths = vec![text("kernel_image_path")];
            if body.get("initrd_path").is_some() {
                paths.push(text("initrd_path"));
            }
            for p in paths {
                if let Err(e) = opens(&p, false) {
                    return fault(e);
                }
            }
            (204, None, false)
        }
        ("PUT", "/machine-config") => (204, None, false),
        ("PUT", "/vsock") => {
            let uds = text("uds_path");
            let _ = std::fs::remove_file(&uds);
            match UnixListener::bind(&uds) {
                Ok(l) => {
                    vmm.vsock = Some(l);
                    (204, None, false)
                }
                Err(e) => fault(format!("binding vsock {uds}: {e}")),
            }
        }
        ("PUT", p) if p.starts_with("/network-interfaces/") => {
            if vmm.started {
                return fault(
                    "The requested operation is not supported after starting the microVM.".into(),
                );
            }
            let Some(devices) = &vmm.devices else {
                return fault("the device thread is gone".into());
            };
            match devices.open_tap(&text("host_dev_name")) {
                Ok(()) => (204, None, false),
                Err(e) => fault(e),
            }
        }
        ("PUT", p) if p.starts_with("/drives/") => {
            if vmm.started {
                return fault(
                    "The requested operation is not supported after starting the microVM.".into(),
                );
            }
            let writable = !body["is_read_only"].as_bool().unwrap_or(false);
            match opens(&text("path_on_host"), writable) {
                Ok(_) => {
                    vmm.drives.insert(p.to_owned(), body.clone());
                    (204, None, false)
                }
                Err(e) => fault(e),
            }
        }
        ("PATCH", p) if p.starts_with("/drives/") => {
            if !vmm.started {
                return fault(
                    "The requested operation is not supported before starting the microVM.".into(),
                );
            }
            let Some(drive) = vmm.drives.get_mut(p) else {
                return fault(format!("Invalid block device ID: {p}"));
            };
            let writable = !drive["is_read_only"].as_bool().unwrap_or(false);
            match opens(&text("path_on_host"), writable) {
                Ok(_) => {
                    drive["path_on_host"] = body["path_on_host"].clone();
                    (204, None, false)
                }
                Err(e) => fault(e),
            }
        }
        ("PUT", "/actions") => match body["action_type"].as_str() {
            Some("InstanceStart") => {
                vmm.started = true;
                (204, None, false)
            }
            Some("SendCtrlAltDel") if vmm.started => (204, None, true),
            // Firecracker writes one JSON object per line to the metrics FIFO.
            Some("FlushMetrics") => match &mut vmm.metrics {
                Some(file) => {
                    let millis = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or_default();
                    let line = json!({ "utc_timestamp_ms": millis, "api_server": {} });
                    match writeln!(file, "{line}") {
                        Ok(()) => (204, None, false),
                        Err(e) => fault(format!("writing metrics: {e}")),
                    }
                }
                None => fault("Metrics system not initialized".into()),
            },
            Some("SendCtrlAltDel") => fault(
                "The requested operation is not supported before starting the microVM.".into(),
            ),
            _ => (204, None, false),
        },
        ("PATCH", "/vm") if vmm.started => {
            vmm.paused = body["state"] == "Paused";
            (204, None, false)
        }
        _ => fault(format!("fake_firecracker does not serve {method} {path}")),
    }
}
