//! Processes the agent runs for the host.

mod child;
mod request;
mod spawn;
mod stream;
mod table;
mod tty;

pub use request::{launch, launch_through, Launch};
pub use stream::{read_chunk, write_some, Read};
pub use table::{Ended, Process, ProcessTable, TableError};
pub use tty::resize;
