//! `run_session` with a local terminal (a pty standing in for the user's):
//! raw mode while it runs and restored after, the terminal's size given to
//! the guest's pty, and a SIGWINCH forwarded as a resize.

mod agent_support;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_support::{root_or_skip, Agent, SharedBuf};
use nix::libc;
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{raise, Signal};
use nix::sys::termios::{tcgetattr, LocalFlags};
use vmjail_sandbox::agent::{run_session, ExitStatus, ProcessSpec, SessionIo};

nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, Winsize);

fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn wait_for(out: &SharedBuf, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.text().contains(text) {
        assert!(Instant::now() < deadline, "no {text:?} in {:?}", out.text());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn raw_mode_window_size_and_sigwinch() {
    if !root_or_skip("raw_mode_window_size_and_sigwinch") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let local = openpty(Some(&size(20, 70)), None).unwrap();
    let canonical = |fd| {
        tcgetattr(fd)
            .unwrap()
            .local_flags
            .contains(LocalFlags::ICANON)
    };
    assert!(canonical(local.slave.as_fd()));

    let out = SharedBuf::default();
    let io = SessionIo {
        stdin: Some(File::from(local.slave.try_clone().unwrap())),
        stdout: Box::new(out.clone()),
        stderr: Box::new(std::io::sink()),
        terminal: Some(local.slave.try_clone().unwrap()),
    };
    let spec = ProcessSpec {
        argv: [
            "sh",
            "-c",
            "stty size; echo ready; read line; stty size; exit 7",
        ]
        .map(String::from)
        .to_vec(),
        // The guest's size comes from the local terminal, not from here.
        tty: Some((1, 1)),
        stdin: true,
        ..Default::default()
    };
    let session = std::thread::spawn(move || run_session(client, &spec, io));
    wait_for(&out, "ready");
    assert!(
        !canonical(local.slave.as_fd()),
        "the local terminal is not raw"
    );

    // SAFETY: TIOCSWINSZ reads one winsize, valid here.
    unsafe { set_window_size(local.master.as_raw_fd(), &size(33, 111)) }.unwrap();
    raise(Signal::SIGWINCH).unwrap();
    // The resize travels on its own thread; give it time before the input.
    std::thread::sleep(Duration::from_millis(500));
    File::from(local.master.try_clone().unwrap())
        .write_all(b"go\r")
        .unwrap();

    let status = session.join().unwrap().unwrap();
    assert_eq!(status, ExitStatus::Exited(7));
    let text = out.text();
    assert!(text.starts_with("20 70\r\nready\r\n"), "{text:?}");
    assert!(text.ends_with("33 111\r\n"), "{text:?}");
    assert!(
        canonical(local.slave.as_fd()),
        "the terminal was not restored"
    );
}
