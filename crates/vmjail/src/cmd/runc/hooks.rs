//! The spec's OCI hooks, run on the host as runc runs them: `prestart`
//! then `createRuntime` during `create` (its host process spawned into the
//! sandbox's netns, the VM not made yet, the status `creating`; a failure
//! fails the create, which removes the sandbox and then runs the poststop
//! hooks),
//! `poststart` after `start` and `poststop` after `delete` (failures only
//! logged). Each hook gets the container's OCI state on its stdin.
//!
//! `createContainer` and `startContainer` hooks run in the container's
//! namespaces, which are inside the VM, where host programs cannot run:
//! a spec with them is refused at create, before anything is made.

use std::path::Path;

use vmjail_sandbox::oci_hooks::{self, HookKind, Hooks};
use vmjail_sandbox::{SandboxId, Sandboxes, SelectFactory};

use super::state::{oci_state, OciState, OciStatus};
use crate::cmd::lifecycle::Failure;

/// The hooks of a bundle's `config.json`, checked; those that would run
/// in the container's namespaces refused.
pub fn from_spec(config: &serde_json::Value) -> Result<Hooks, Failure> {
    let hooks = Hooks::from_spec(config).map_err(|e| Failure::Usage(e.to_string()))?;
    for kind in [HookKind::CreateContainer, HookKind::StartContainer] {
        if !hooks.list(kind).is_empty() {
            return Err(Failure::Usage(format!(
                "config.json: hooks.{kind}: these hooks run in the container's namespaces, \
                 which are inside the container's VM, where host programs cannot run \
                 (vmjail runs prestart, createRuntime, poststart and poststop hooks, on the host)"
            )));
        }
    }
    Ok(hooks)
}

/// The hooks `create` recorded for container `id`.
pub fn recorded(id: &SandboxId) -> Hooks {
    let Some(value) = super::pointer::hooks(id.as_str()) else {
        return Hooks::default();
    };
    Hooks::from_spec(&serde_json::json!({ "hooks": value })).unwrap_or_else(|e| {
        tracing::warn!("container {id}: its recorded hooks: {e}");
        Hooks::default()
    })
}

/// `prestart`, then `createRuntime` (runc's order), with the state as
/// `creating`; the first failure is the create's.
pub fn run_create(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
    hooks: &Hooks,
) -> Result<(), Failure> {
    if hooks.list(HookKind::Prestart).is_empty() && hooks.list(HookKind::CreateRuntime).is_empty() {
        return Ok(());
    }
    let mut state = oci_state(sandboxes, id)?;
    state.status = OciStatus::Creating;
    for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
        oci_hooks::run(
            kind,
            hooks.list(kind),
            &state.to_json(),
            Path::new(&state.bundle),
        )
        .map_err(|e| Failure::Other(format!("container \"{id}\": {e}")))?;
    }
    Ok(())
}

/// `poststart`, failures logged.
pub fn run_poststart(sandboxes: &Sandboxes<SelectFactory>, id: &SandboxId, hooks: &Hooks) {
    let list = hooks.list(HookKind::Poststart);
    if list.is_empty() {
        return;
    }
    match oci_state(sandboxes, id) {
        Ok(mut state) => {
            // Its process was started (a short one may have ended since).
            state.status = OciStatus::Running;
            run_logged(id, HookKind::Poststart, list, &state);
        }
        Err(e) => tracing::warn!("container {id}: poststart hooks not run: {e}"),
    }
}

/// `poststop` with `state` (taken before the delete) as `stopped`,
/// failures logged.
pub fn run_poststop(id: &SandboxId, hooks: &Hooks, state: Option<OciState>) {
    let list = hooks.list(HookKind::Poststop);
    if list.is_empty() {
        return;
    }
    let Some(mut state) = state else {
        tracing::warn!("container {id}: poststop hooks not run: its state was not readable");
        return;
    };
    state.status = OciStatus::Stopped;
    state.pid = 0;
    run_logged(id, HookKind::Poststop, list, &state);
}

fn run_logged(id: &SandboxId, kind: HookKind, list: &[oci_hooks::Hook], state: &OciState) {
    for e in oci_hooks::run_logged(kind, list, &state.to_json(), Path::new(&state.bundle)) {
        tracing::warn!("container {id}: {e} (a {kind} hook's failure is only logged)");
    }
}
