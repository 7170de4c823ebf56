//! Real hook processes (`/bin/sh`): state on stdin, argv and env as the
//! spec gives them, failures and timeouts named, output bounded.

use super::*;
use serde_json::json;

fn hooks(value: serde_json::Value) -> Result<Hooks, HookError> {
    Hooks::from_spec(&json!({ "hooks": value }))
}

fn sh(script: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut hook = json!({"path": "/bin/sh", "args": ["sh", "-c", script]});
    if let (Some(h), Some(e)) = (hook.as_object_mut(), extra.as_object()) {
        h.extend(e.clone());
    }
    hook
}

fn one(script: &str, extra: serde_json::Value) -> Hooks {
    hooks(json!({ "poststart": [sh(script, extra)] })).unwrap()
}

#[test]
fn the_state_args_env_and_cwd_reach_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = "cat > \"$0\"; echo \"$HOOK_A|${HOME:-none}|$(pwd)|$1\" >> \"$0\"";
    let h = hooks(json!({"poststart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", script, out.to_str().unwrap(), "second"],
        "env": ["HOOK_A=a=b"],
    }]}))
    .unwrap();
    run(
        HookKind::Poststart,
        h.list(HookKind::Poststart),
        br#"{"id":"x"}"#,
        dir.path(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(
        text,
        format!("{{\"id\":\"x\"}}a=b|none|{}|second\n", cwd.display())
    );
}

#[test]
fn a_failing_hook_is_named_with_its_stderr_and_stops_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let later = dir.path().join("later");
    let h = hooks(json!({ "prestart": [
        sh("echo hook-said-no >&2; exit 3", json!({})),
        sh(&format!("touch {}", later.display()), json!({})),
    ]}))
    .unwrap();
    let err = run(
        HookKind::Prestart,
        h.list(HookKind::Prestart),
        b"{}",
        dir.path(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("prestart hook 0 (/bin/sh) failed: exit status 3"),
        "{text}"
    );
    assert!(text.contains("stderr: hook-said-no"), "{text}");
    assert!(!later.exists(), "the list went on after a failure");
    // Logged only: every hook runs.
    let failures = run_logged(
        HookKind::Prestart,
        h.list(HookKind::Prestart),
        b"{}",
        dir.path(),
    );
    assert_eq!(failures.len(), 1);
    assert!(later.exists());
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("hook-timeout-{}", std::process::id());
    let h = one(
        &format!("sleep 60 & sleep 61; : {marker}"),
        json!({"timeout": 1}),
    );
    let started = Instant::now();
    let err = run(
        HookKind::Poststart,
        h.list(HookKind::Poststart),
        b"{}",
        dir.path(),
    )
    .unwrap_err();
    assert!(matches!(err, HookError::TimedOut { .. }), "{err}");
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The shell and both sleeps (its group) are gone.
    std::thread::sleep(Duration::from_millis(100));
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&marker),
            "left running: {:?}",
            entry.path()
        );
    }
}

#[test]
fn output_is_bounded_and_never_blocks_the_hook() {
    let dir = tempfile::tempdir().unwrap();
    // 20 MiB on stdout, 1 MiB on stderr, then a failure.
    let h = one(
        "head -c 20971520 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2; exit 1",
        json!({"timeout": 20}),
    );
    let err = run(
        HookKind::Poststart,
        h.list(HookKind::Poststart),
        b"{}",
        dir.path(),
    )
    .unwrap_err();
    let HookError::Failed { output, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        output.len() < 3 * KEPT_OUTPUT,
        "{} bytes kept",
        output.len()
    );
    assert!(
        output.contains(&format!("({} more bytes)", 20971520 - KEPT_OUTPUT)),
        "{err}"
    );
}

#[test]
fn the_largest_timeout_is_no_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let h = one("exit 0", json!({"timeout": i64::MAX}));
    run(
        HookKind::Poststart,
        h.list(HookKind::Poststart),
        b"{}",
        dir.path(),
    )
    .unwrap();
}

#[test]
fn a_background_child_holding_the_pipes_does_not_hold_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let h = one("setsid sleep 3 & exit 0", json!({}));
    let started = Instant::now();
    run(
        HookKind::Poststart,
        h.list(HookKind::Poststart),
        b"{}",
        dir.path(),
    )
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_hooks_are_refused_by_name() {
    for (value, needle) in [
        (
            json!({"prestart": [{"path": "sh"}]}),
            "hooks.prestart[0]: path \"sh\" is not absolute",
        ),
        (
            json!({"poststop": [{"path": "/bin/true"}, {"path": "/bin/true", "timeout": 0}]}),
            "hooks.poststop[1]: timeout 0",
        ),
        (
            json!({"createRuntime": [{"path": "/bin/true", "env": ["NOEQUALS"]}]}),
            "hooks.createRuntime[0]: env entry \"NOEQUALS\"",
        ),
        (json!({"prestart": "nope"}), "config.json: hooks:"),
    ] {
        let err = hooks(value).unwrap_err().to_string();
        assert!(err.contains(needle), "{err} lacks {needle}");
    }
    assert!(Hooks::from_spec(&json!({})).unwrap().is_empty());
    let h = hooks(json!({"startContainer": [{"path": "/bin/true"}]})).unwrap();
    assert!(!h.is_empty());
    assert_eq!(h.list(HookKind::StartContainer).len(), 1);
    assert!(h.list(HookKind::Prestart).is_empty());
}

#[test]
fn a_missing_hook_binary_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let h = hooks(json!({"poststop": [{"path": "/nonexistent/hook"}]})).unwrap();
    let err = run(
        HookKind::Poststop,
        h.list(HookKind::Poststop),
        b"{}",
        dir.path(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("poststop hook 0 (/nonexistent/hook): starting it"),
        "{err}"
    );
}
