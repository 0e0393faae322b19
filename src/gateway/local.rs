//! `peerd.agent.v1.Agent`, the local node API on the gateway listener: who
//! this node is, its peers, service providers, and exposing a service for
//! as long as the agent holds the call open.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use tonic::Streaming;

use super::exposures::{Allow, BackendTarget, Exposure};
use super::status::ok_with_trailers;
use super::{Answer, Shared, proto};
use peerd::connection::{ConnectionEvent, Direction, EventKind};
use tokio::sync::broadcast::error::RecvError;

/// The local API's methods are `/peerd.agent.v1.Agent/<Method>`.
pub const SERVICE_PREFIX: &str = "peerd.agent.v1.Agent/";

pub async fn serve(
    shared: Arc<Shared>,
    method: &str,
    request: tonic::Request<Streaming<Bytes>>,
) -> Result<tonic::Response<Answer>, tonic::Status> {
    let mut messages = request.into_inner();
    let request = messages
        .message()
        .await?
        .ok_or_else(|| tonic::Status::invalid_argument("the request message is missing"))?;
    let bad = |e: prost::DecodeError| tonic::Status::invalid_argument(format!("bad request: {e}"));
    let reply = match method {
        "WhoAmI" => who_am_i(&shared).encode_to_vec(),
        "Peers" => peers(&shared).encode_to_vec(),
        "FindService" => {
            let request = proto::FindServiceRequest::decode(request).map_err(bad)?;
            find_service(&shared, &request.name).await.encode_to_vec()
        }
        "Events" => return Ok(events(&shared)),
        "Expose" => {
            let request = proto::ExposeRequest::decode(request).map_err(bad)?;
            return expose(&shared, request);
        }
        other => {
            return Err(tonic::Status::unimplemented(format!(
                "peerd.agent.v1.Agent has no method {other:?}"
            )));
        }
    };
    let (sender, answer) = mpsc::channel(2);
    let _ = sender.try_send(Ok(Bytes::from(reply)));
    let _ = sender.try_send(Err(ok_with_trailers(None)));
    Ok(tonic::Response::new(Answer::new(answer)))
}

fn who_am_i(shared: &Shared) -> proto::WhoAmIResponse {
    proto::WhoAmIResponse {
        node_id: shared.node.id().to_string(),
        addrs: shared.reach_addrs.iter().map(ToString::to_string).collect(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

fn peers(shared: &Shared) -> proto::PeersResponse {
    let peers = shared
        .node
        .manager()
        .connections()
        .iter()
        .map(|connection| proto::Peer {
            node_id: connection.remote_node_id().to_string(),
            address: connection.remote_address().to_string(),
            direction: direction_name(connection.direction()).into(),
            rtt_micros: u64::try_from(connection.rtt().as_micros()).unwrap_or(u64::MAX),
        })
        .collect();
    proto::PeersResponse { peers }
}

async fn find_service(shared: &Shared, name: &str) -> proto::FindServiceResponse {
    let records = shared.node.discovery().find_service(name).await;
    let providers = records
        .into_iter()
        .map(|record| proto::Provider {
            node_id: record.node_id,
            version: record.version,
            addrs: record.addrs.iter().map(ToString::to_string).collect(),
            ttl_remaining_secs: record.ttl_remaining_secs,
        })
        .collect();
    proto::FindServiceResponse { providers }
}

/// Connection events until the agent ends the call or the daemon stops.
fn events(shared: &Arc<Shared>) -> tonic::Response<Answer> {
    let mut events = shared.node.manager().subscribe();
    let (sender, answer) = mpsc::channel(shared.limits.stream_buffer);
    let cancel = shared.cancel.child_token();
    shared.tasks.spawn(async move {
        loop {
            let event = tokio::select! {
                () = sender.closed() => return,
                () = cancel.cancelled() => return,
                event = events.recv() => event,
            };
            let message = match event {
                Ok(event) => event_message(&event),
                Err(RecvError::Lagged(missed)) => proto::ConnectionEvent {
                    missed,
                    ..Default::default()
                },
                Err(RecvError::Closed) => return,
            };
            if sender
                .send(Ok(Bytes::from(message.encode_to_vec())))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    tonic::Response::new(Answer::new(answer))
}

fn event_message(event: &ConnectionEvent) -> proto::ConnectionEvent {
    let (kind, reason) = match &event.kind {
        EventKind::Connected => ("connected", String::new()),
        EventKind::Disconnected { reason } => ("disconnected", reason.clone()),
    };
    proto::ConnectionEvent {
        node_id: event.node.to_string(),
        kind: kind.into(),
        direction: direction_name(event.direction).into(),
        address: event.remote_address.to_string(),
        reason,
        missed: 0,
    }
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

/// Exposes the service until the agent's call ends (it cancels, its
/// connection closes, its process dies) or the daemon shuts down.
fn expose(
    shared: &Arc<Shared>,
    request: proto::ExposeRequest,
) -> Result<tonic::Response<Answer>, tonic::Status> {
    let invalid = |message: String| tonic::Status::invalid_argument(message);
    if request.service.is_empty() || request.service.contains('/') {
        return Err(invalid(
            "service must be a gRPC service name like \"pkg.Echo\"".into(),
        ));
    }
    let target = BackendTarget::parse(&request.target).map_err(invalid)?;
    let allow = Allow::parse(&request.allow).map_err(invalid)?;
    let exposure = Exposure::new(
        request.service.clone(),
        target,
        allow,
        shared.limits.max_calls_per_service,
    );
    let guard = shared
        .exposures
        .add(exposure)
        .map_err(tonic::Status::already_exists)?;
    tracing::info!(service = %request.service, target = %request.target, "service exposed by an agent");
    let (sender, answer) = mpsc::channel(1);
    let event = proto::ExposeEvent {
        service: request.service,
    };
    let _ = sender.try_send(Ok(Bytes::from(event.encode_to_vec())));
    let cancel = shared.cancel.child_token();
    shared.tasks.spawn(async move {
        tokio::select! {
            () = sender.closed() => {}
            () = cancel.cancelled() => {}
        }
        drop(guard);
    });
    Ok(tonic::Response::new(Answer::new(answer)))
}
