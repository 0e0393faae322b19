//! `peerd call`: the built-in node service's methods with JSON in and out,
//! so operators can call them without protobuf tooling.

use serde_json::{Value, json};

use crate::identity::NodeId;
use crate::rpc::{CallOptions, RpcClient, Status};
use crate::service::node::{self, proto};

/// Methods `peerd call` knows, by short name.
pub const METHODS: [&str; 3] = ["Ping", "Info", "Echo"];

/// Accepts `Ping` or `peerd.node.v1.Node/Ping`.
fn short_name(method: &str) -> &str {
    method
        .strip_prefix(node::SERVICE)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(method)
}

pub async fn call(
    client: &RpcClient,
    target: NodeId,
    method: &str,
    body: &Value,
    options: &CallOptions,
) -> Result<(String, Value), Status> {
    let short = short_name(method);
    let full = format!("{}/{short}", node::SERVICE);
    let response = match short {
        "Ping" => {
            let request = proto::PingRequest {
                nonce: u64_field(body, "nonce")?,
            };
            let answer: proto::PingResponse =
                client.unary(target, &full, &request, options).await?;
            json!({ "nonce": answer.nonce, "unix_micros": answer.unix_micros })
        }
        "Info" => {
            let answer = node::info(client, target, options).await?;
            json!({
                "node_id": answer.node_id,
                "version": answer.version,
                "listen_addrs": answer.listen_addrs,
                "observed_addr": answer.observed_addr,
                "services": answer.services,
            })
        }
        "Echo" => {
            let request = proto::EchoRequest {
                payload: string_field(body, "payload")?.into_bytes().into(),
                delay_millis: u64_field(body, "delay_millis")?
                    .try_into()
                    .unwrap_or(u32::MAX),
            };
            let answer: proto::EchoResponse =
                client.unary(target, &full, &request, options).await?;
            json!({ "payload": String::from_utf8_lossy(&answer.payload) })
        }
        _ => {
            let known = METHODS.join(", ");
            return Err(Status::unimplemented(format!(
                "peerd call knows the built-in methods {known}, not {method:?}"
            )));
        }
    };
    Ok((full, response))
}

fn u64_field(body: &Value, name: &str) -> Result<u64, Status> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value.as_u64().ok_or_else(|| {
            Status::invalid_argument(format!("{name} must be a non-negative integer"))
        }),
    }
}

fn string_field(body: &Value, name: &str) -> Result<String, Status> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(Status::invalid_argument(format!("{name} must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_short_method_names_are_accepted() {
        assert_eq!(short_name("Ping"), "Ping");
        assert_eq!(short_name("peerd.node.v1.Node/Echo"), "Echo");
        assert_eq!(short_name("other.Service/Ping"), "other.Service/Ping");
    }

    #[test]
    fn fields_are_checked() {
        let body = json!({ "nonce": 7, "payload": "hi", "bad": -1 });
        assert_eq!(u64_field(&body, "nonce"), Ok(7));
        assert_eq!(u64_field(&body, "missing"), Ok(0));
        assert!(u64_field(&body, "bad").is_err());
        assert_eq!(string_field(&body, "payload").unwrap(), "hi");
        assert!(string_field(&body, "nonce").is_err());
    }
}
