//! An in-process Firecracker API double, for tests of *logic* only: a Unix
//! socket HTTP server that validates every request against the spec and
//! keeps Firecracker's pre-/post-boot rules, answering like Firecracker
//! (204 / 200 InstanceInfo / 400 with `fault_message`).

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value as Json};

use super::spec::Spec;

/// One request the double received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub body: Option<Json>,
    /// Why the request broke the spec, if it did.
    pub violation: Option<String>,
}

/// What the double should do differently for one `METHOD /path`.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Refuse with this status and `fault_message`.
    Fault(u16, String),
    /// Answer only after this long.
    Delay(Duration),
}

#[derive(Default)]
struct Vmm {
    started: bool,
    paused: bool,
    boot_source: bool,
    drives: HashMap<String, Json>,
    received: Vec<Received>,
    behaviours: HashMap<String, Behaviour>,
}

pub struct ApiDouble {
    pub socket: PathBuf,
    vmm: Arc<Mutex<Vmm>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiDouble {
    /// Serve on `socket` now.
    pub fn start(socket: &Path) -> ApiDouble {
        Self::start_after(socket, Duration::ZERO)
    }

    /// Bind `socket` only after `delay` (a slow VMM start).
    pub fn start_after(socket: &Path, delay: Duration) -> ApiDouble {
        let spec = Arc::new(Spec::load());
        let vmm = Arc::new(Mutex::new(Vmm::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (path, state, flag) = (socket.to_path_buf(), vmm.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(path, delay, spec, state, flag));
        });
        ApiDouble {
            socket: socket.to_path_buf(),
            vmm,
            stop,
            thread: Some(thread),
        }
    }

    /// Make `METHOD /path` behave differently from now on.
    pub fn set(&self, method: &str, path: &str, behaviour: Behaviour) {
        self.vmm
            .lock()
            .unwrap()
            .behaviours
            .insert(format!("{method} {path}"), behaviour);
    }

    pub fn received(&self) -> Vec<Received> {
        self.vmm.lock().unwrap().received.clone()
    }

    /// `METHOD /path` of every request, in order.
    pub fn calls(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Panic when any request broke the spec.
    pub fn assert_no_violation(&self) {
        let bad: Vec<_> = self
            .received()
            .into_iter()
            .filter(|r| r.violation.is_some())
            .collect();
        assert!(bad.is_empty(), "requests that break the spec: {bad:#?}");
    }

    /// The drive bodies Firecracker would now hold, by id.
    pub fn drives(&self) -> HashMap<String, Json> {
        self.vmm.lock().unwrap().drives.clone()
    }
}

impl Drop for ApiDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::os::unix::net::UnixStream::connect(&self.socket);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn serve(
    path: PathBuf,
    delay: Duration,
    spec: Arc<Spec>,
    vmm: Arc<Mutex<Vmm>>,
    stop: Arc<AtomicBool>,
) {
    tokio::time::sleep(delay).await;
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    while !stop.load(Ordering::SeqCst) {
        // Poll `stop` now and then: a teardown may have removed the socket
        // file, and then Drop's wake-up connect cannot reach this loop.
        let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
        let Ok(Ok((stream, _))) = accepted else {
            continue;
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (spec, vmm) = (spec.clone(), vmm.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, spec.clone(), vmm.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(status: u16, body: Option<Json>) -> Response<Full<Bytes>> {
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(bytes))
        .unwrap()
}

fn fault(message: impl Into<String>) -> (u16, Option<Json>) {
    (400, Some(json!({ "fault_message": message.into() })))
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    spec: Arc<Spec>,
    vmm: Arc<Mutex<Vmm>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (body, mut violation) = if bytes.is_empty() {
        (None, None)
    } else {
        match serde_json::from_slice::<Json>(&bytes) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(format!("body is not JSON: {e}"))),
        }
    };
    if violation.is_none() {
        violation = spec.validate_request(&method, &path, body.as_ref()).err();
    }
    let behaviour = {
        let mut vmm = vmm.lock().unwrap();
        vmm.received.push(Received {
            method: method.clone(),
            path: path.clone(),
            body: body.clone(),
            violation: violation.clone(),
        });
        vmm.behaviours.get(&format!("{method} {path}")).cloned()
    };
    if let Some(Behaviour::Delay(d)) = &behaviour {
        tokio::time::sleep(*d).await;
    }
    let (status, answer_body) = if let Some(v) = violation {
        fault(format!("spec violation: {v}"))
    } else if let Some(Behaviour::Fault(status, message)) = behaviour {
        (status, Some(json!({ "fault_message": message })))
    } else {
        firecracker_rules(&mut vmm.lock().unwrap(), &method, &path, body)
    };
    if let Some(b) = &answer_body {
        if let Err(e) = spec.validate_response(&method, &path, status, b) {
            panic!("the API double itself broke the spec: {e}");
        }
    }
    Ok(answer(status, answer_body))
}

/// The subset of Firecracker's state machine the backend relies on.
fn firecracker_rules(
    vmm: &mut Vmm,
    method: &str,
    path: &str,
    body: Option<Json>,
) -> (u16, Option<Json>) {
    let body = body.unwrap_or(Json::Null);
    let pre_boot_only: BTreeSet<&str> = [
        "PUT /logger",
        "PUT /metrics",
        "PUT /machine-config",
        "PUT /boot-source",
        "PUT /vsock",
    ]
    .into();
    let call = format!("{method} {path}");
    if vmm.started
        && (pre_boot_only.contains(call.as_str())
            || (method == "PUT"
                && (path.starts_with("/drives/") || path.starts_with("/network-interfaces/"))))
    {
        return fault("The requested operation is not supported after starting the microVM.");
    }
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
                    json!({ "app_name": "Firecracker", "id": "anonymous-instance", "state": state, "vmm_version": "1.17.0-double" }),
                ),
            )
        }
        ("PUT", "/boot-source") => {
            vmm.boot_source = true;
            (204, None)
        }
        ("PUT", "/actions") => match body["action_type"].as_str() {
            Some("InstanceStart") if vmm.started => fault("The microVM is already running."),
            Some("InstanceStart") if !vmm.boot_source => {
                fault("Cannot start microvm without kernel configuration.")
            }
            Some("InstanceStart") => {
                vmm.started = true;
                (204, None)
            }
            Some("SendCtrlAltDel") if !vmm.started => {
                fault("The requested operation is not supported before starting the microVM.")
            }
            _ => (204, None),
        },
        ("PATCH", "/vm") => {
            if !vmm.started {
                return fault(
                    "The requested operation is not supported before starting the microVM.",
                );
            }
            vmm.paused = body["state"] == "Paused";
            (204, None)
        }
        ("PUT", p) if p.starts_with("/drives/") => {
            let id = &p["/drives/".len()..];
            if body["drive_id"].as_str() != Some(id) {
                return fault("The id from the path does not match the id from the body!");
            }
            vmm.drives.insert(id.to_owned(), body);
            (204, None)
        }
        ("PATCH", p) if p.starts_with("/drives/") => {
            let id = &p["/drives/".len()..];
            if !vmm.started {
                return fault(
                    "The requested operation is not supported before starting the microVM.",
                );
            }
            match vmm.drives.get_mut(id) {
                None => fault(format!("Invalid block device ID: {id}")),
                Some(drive) => {
                    drive["path_on_host"] = body["path_on_host"].clone();
                    (204, None)
                }
            }
        }
        _ => (204, None),
    }
}
