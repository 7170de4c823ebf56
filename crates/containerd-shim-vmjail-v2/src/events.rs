//! Task events to containerd, in order and off the request threads: one
//! thread forwards them over the publisher's ttrpc connection, each with a
//! deadline so a stuck containerd cannot hold the shim.

use std::sync::mpsc;
use std::sync::Mutex;

use containerd_shim::event::Event;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim_protos::protobuf::MessageDyn;
use containerd_shim_protos::ttrpc::context;

/// How long containerd has to take one event.
const PUBLISH_TIMEOUT_NS: i64 = 5_000_000_000;

type Boxed = (String, Box<dyn MessageDyn + Send>);

pub struct Events {
    queue: Mutex<mpsc::Sender<Boxed>>,
}

impl Events {
    pub fn start(publisher: RemotePublisher, namespace: String) -> Events {
        let (queue, events) = mpsc::channel::<Boxed>();
        let forward = move || {
            for (topic, event) in events {
                let ctx = context::with_timeout(PUBLISH_TIMEOUT_NS);
                if let Err(e) = publisher.publish(ctx, &topic, &namespace, event) {
                    log::warn!("publishing {topic}: {e}");
                }
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("events".into())
            .spawn(forward)
        {
            log::error!("starting the event thread: {e}; events are dropped");
        }
        Events {
            queue: Mutex::new(queue),
        }
    }

    pub fn send(&self, event: impl Event + Send + 'static) {
        if let Ok(queue) = self.queue.lock() {
            let _ = queue.send((event.topic(), Box::new(event)));
        }
    }
}
