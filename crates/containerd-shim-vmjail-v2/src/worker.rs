//! One thread owns a task's [`Sandboxes`] (it holds the hypervisor objects
//! that spawned the VMM, which are not `Send`); the task service's threads
//! hand it closures and wait for their result, as `vmjail run` would call
//! it from one thread.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;

use vmjail_config::JailConfig;
use vmjail_sandbox::{Sandboxes, SelectFactory};

type Job = Box<dyn FnOnce(&Sandboxes<SelectFactory>) + Send>;

pub struct Worker {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Worker {
    /// The sandboxes of `jail`'s state dir, with `vmjail_exe` (the
    /// `vmjail` binary: its jailer and console pump) for launching.
    pub fn start(jail: JailConfig, vmjail_exe: PathBuf) -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sandboxes".into())
            .spawn(move || {
                let sandboxes = Sandboxes::new(&jail, SelectFactory { vmjail_exe });
                for job in queue {
                    job(&sandboxes);
                }
            })?;
        Ok(Worker {
            jobs: Mutex::new(jobs),
        })
    }

    /// Runs `f` on the sandboxes' thread and returns its result; `None`
    /// if that thread is gone (it panicked).
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Sandboxes<SelectFactory>) -> R + Send + 'static,
    ) -> Option<R> {
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = done.send(f(s));
        });
        self.jobs.lock().ok()?.send(job).ok()?;
        result.recv().ok()
    }
}
