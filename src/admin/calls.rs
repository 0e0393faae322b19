//! `peerd call`: the built-in node service's methods with JSON in and out,
//! so operators can call them without protobuf tooling, and any method with
//! its request and response as protobuf bytes in hex.

use serde_json::{Value, json};

use peerd::identity::{NodeId, to_hex};
use peerd::node_service::{self as node, proto};
use peerd::rpc::{CallOptions, RpcClient, Status};

/// Why a `peerd call` did not return a response.
#[derive(Debug)]
pub enum CallFailure {
    /// The request does not fit the method; nothing was sent.
    Invalid(String),
    /// The call was made and ended with this status.
    Status(Status),
}

impl From<Status> for CallFailure {
    fn from(status: Status) -> Self {
        CallFailure::Status(status)
    }
}

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
) -> Result<(String, Value), CallFailure> {
    if let Some(hex) = body.get(HEX) {
        return call_encoded(client, target, method, hex, options).await;
    }
    let short = short_name(method);
    let full = format!("{}/{short}", node::SERVICE);
    if let Some(fields) = fields_of(short) {
        only_fields(body, fields)?;
    }
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
            return Err(CallFailure::Invalid(format!(
                "peerd call takes JSON for the built-in methods {known}, not {method:?}; \
                 give any other method its request as protobuf bytes in hex (--hex)"
            )));
        }
    };
    Ok((full, response))
}

/// The JSON fields a built-in method's request has.
fn fields_of(short: &str) -> Option<&'static [&'static str]> {
    match short {
        "Ping" => Some(&["nonce"]),
        "Info" => Some(&[]),
        "Echo" => Some(&["payload", "delay_millis"]),
        _ => None,
    }
}

/// A field the request does not have is refused, not dropped: it is
/// usually a typo.
fn only_fields(body: &Value, fields: &[&str]) -> Result<(), CallFailure> {
    let unknown = match body {
        Value::Null => None,
        Value::Object(map) => map.keys().find(|key| !fields.contains(&key.as_str())),
        _ => {
            return Err(CallFailure::Invalid(
                "the request must be a JSON object".to_owned(),
            ));
        }
    };
    match unknown {
        None => Ok(()),
        Some(key) => Err(CallFailure::Invalid(format!(
            "the request has no field {key:?} (its fields: {})",
            fields.join(", ")
        ))),
    }
}

/// The body's key for a request given as protobuf bytes, and the
/// response's key for the bytes that came back.
pub const HEX: &str = "hex";

/// A built-in method may be named short; any other by its full name.
fn full_name(method: &str) -> String {
    match method.contains('/') {
        true => method.to_owned(),
        false => format!("{}/{method}", node::SERVICE),
    }
}

async fn call_encoded(
    client: &RpcClient,
    target: NodeId,
    method: &str,
    hex: &Value,
    options: &CallOptions,
) -> Result<(String, Value), CallFailure> {
    let request = hex
        .as_str()
        .ok_or_else(|| CallFailure::Invalid("hex must be a string".to_owned()))
        .and_then(from_hex)?;
    let full = full_name(method);
    let response = client
        .unary_encoded(target, &full, &request, options)
        .await?;
    Ok((full, json!({ HEX: to_hex(&response) })))
}

fn from_hex(text: &str) -> Result<Vec<u8>, CallFailure> {
    let digits: Option<Vec<u8>> = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect();
    match digits {
        Some(digits) if digits.len() % 2 == 0 => Ok(digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect()),
        _ => Err(CallFailure::Invalid(format!(
            "{text:?} is not bytes in hex"
        ))),
    }
}

fn u64_field(body: &Value, name: &str) -> Result<u64, CallFailure> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| CallFailure::Invalid(format!("{name} must be a non-negative integer"))),
    }
}

fn string_field(body: &Value, name: &str) -> Result<String, CallFailure> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(CallFailure::Invalid(format!("{name} must be a string"))),
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
    fn bytes_go_to_hex_and_back_and_broken_hex_is_refused() {
        let bytes = [0x0a, 0x02, b'h', b'i', 0xff, 0x00];
        assert_eq!(to_hex(&bytes), "0a026869ff00");
        assert_eq!(from_hex("0a026869ff00").unwrap(), bytes);
        assert_eq!(from_hex("0A 02 68 69 FF 00").unwrap(), bytes);
        assert_eq!(from_hex("").unwrap(), Vec::<u8>::new());
        for broken in ["0a0", "zz", "+1", "0x0a", "é1"] {
            let failure = from_hex(broken).unwrap_err();
            assert!(
                matches!(&failure, CallFailure::Invalid(m) if m.contains("not bytes in hex")),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn other_services_methods_keep_their_full_names() {
        assert_eq!(full_name("Echo"), "peerd.node.v1.Node/Echo");
        assert_eq!(full_name("my.v1.Svc/Do"), "my.v1.Svc/Do");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        assert!(only_fields(&json!({ "payload": "hi" }), &["payload"]).is_ok());
        assert!(only_fields(&Value::Null, &["payload"]).is_ok());
        let typo = only_fields(&json!({ "paylod": "hi" }), &["payload"]).unwrap_err();
        assert!(
            matches!(&typo, CallFailure::Invalid(m) if m.contains("\"paylod\"")),
            "{typo:?}"
        );
        assert!(only_fields(&json!([1]), &["payload"]).is_err());
    }

    #[test]
    fn fields_are_checked() {
        let body = json!({ "nonce": 7, "payload": "hi", "bad": -1 });
        assert_eq!(u64_field(&body, "nonce").unwrap(), 7);
        assert_eq!(u64_field(&body, "missing").unwrap(), 0);
        assert!(u64_field(&body, "bad").is_err());
        assert_eq!(string_field(&body, "payload").unwrap(), "hi");
        assert!(string_field(&body, "nonce").is_err());
    }
}
