//! The `Agent` ttrpc service: checks each request's sizes, then hands it to
//! the part of the agent that does the work.

use std::sync::Arc;

use vmjail_agent_protocol::agent::{
    GuestInfoRequest, GuestInfoResponse, VersionRequest, VersionResponse,
};
use vmjail_agent_protocol::agent_ttrpc::Agent;
use vmjail_agent_protocol::ttrpc::error::get_rpc_status;
use vmjail_agent_protocol::ttrpc::{self, Code, TtrpcContext};
use vmjail_agent_protocol::PROTOCOL_VERSION;

use crate::info;

pub struct AgentService {}

impl AgentService {
    pub fn new() -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(AgentService {}))
    }
}

impl Agent for AgentService {
    fn version(&self, _: &TtrpcContext, req: VersionRequest) -> ttrpc::Result<VersionResponse> {
        if req.protocol_version != PROTOCOL_VERSION {
            tracing::warn!(
                "host speaks protocol {}, this agent {PROTOCOL_VERSION}",
                req.protocol_version
            );
        }
        Ok(VersionResponse {
            protocol_version: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn guest_info(
        &self,
        _: &TtrpcContext,
        _: GuestInfoRequest,
    ) -> ttrpc::Result<GuestInfoResponse> {
        info::guest_info().map_err(|e| get_rpc_status(Code::INTERNAL, format!("guest info: {e}")))
    }
}
