//! The agent does not trust the host's sizes either: requests beyond the
//! protocol's limits are refused or capped, through the raw generated
//! client (the host's `AgentClient` never sends such requests).

mod agent_support;

use std::time::{Duration, Instant};

use agent_support::{root_or_skip, Agent};
use vmjail_agent_protocol::agent::{
    CreateProcessRequest, ReadOutputRequest, WaitProcessRequest, WriteStdinRequest,
};
use vmjail_agent_protocol::agent_ttrpc::AgentClient;
use vmjail_agent_protocol::ttrpc::{self, context, Code};
use vmjail_agent_protocol::{MAX_IO_CHUNK, MAX_LIST_ENTRIES, MAX_WAIT_MS};

fn raw_client(agent: &Agent) -> AgentClient {
    let fd = std::os::fd::IntoRawFd::into_raw_fd(agent.connect());
    AgentClient::new(ttrpc::Client::new(fd).unwrap())
}

fn ctx() -> context::Context {
    context::with_timeout(Duration::from_secs(20).as_nanos() as i64)
}

fn code(e: ttrpc::Error) -> Code {
    match e {
        ttrpc::Error::RpcStatus(s) => s.code(),
        other => panic!("not a refusal: {other:?}"),
    }
}

#[test]
fn oversized_requests_are_refused_or_capped() {
    if !root_or_skip("oversized_requests_are_refused_or_capped") {
        return;
    }
    let agent = Agent::start();
    let client = raw_client(&agent);

    let too_many = CreateProcessRequest {
        argv: vec!["true".into(); MAX_LIST_ENTRIES + 1],
        ..Default::default()
    };
    let e = client.create_process(ctx(), &too_many).unwrap_err();
    assert_eq!(code(e), Code::INVALID_ARGUMENT);

    let cat = CreateProcessRequest {
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "head -c 300000 /dev/zero; exec sleep 30".into(),
        ],
        stdin: true,
        ..Default::default()
    };
    let id = client.create_process(ctx(), &cat).unwrap().process_id;

    let big_write = WriteStdinRequest {
        process_id: id,
        data: vec![0; MAX_IO_CHUNK as usize + 1],
        ..Default::default()
    };
    let e = client.write_stdin(ctx(), &big_write).unwrap_err();
    assert_eq!(code(e), Code::INVALID_ARGUMENT);

    // Asked for 4 GiB: gets at most one chunk.
    let greedy = ReadOutputRequest {
        process_id: id,
        max_bytes: u32::MAX,
        wait_ms: 1000,
        ..Default::default()
    };
    let mut got = 0;
    while got < 300_000 {
        let chunk = client.read_stdout(ctx(), &greedy).unwrap();
        assert!(
            chunk.data.len() <= MAX_IO_CHUNK as usize,
            "{} bytes",
            chunk.data.len()
        );
        assert!(!chunk.eof);
        got += chunk.data.len();
    }
    assert_eq!(got, 300_000);

    // Asked to wait 49 days: the agent answers after its own cap.
    let forever = WaitProcessRequest {
        process_id: id,
        wait_ms: u32::MAX,
        ..Default::default()
    };
    let start = Instant::now();
    let answer = client.wait_process(ctx(), &forever).unwrap();
    let waited = start.elapsed();
    assert!(answer.status.is_none());
    let cap = Duration::from_millis(u64::from(MAX_WAIT_MS));
    assert!(
        waited >= cap && waited < cap + Duration::from_secs(3),
        "{waited:?}"
    );
}
