//! Statuses across the gateway: a peerd call's status and an agent's gRPC
//! status carry the same code, message, trailers and details (the details
//! travel on the peerd leg as the `grpc-status-details-bin` trailer).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use bytes::Bytes;
use http::HeaderMap;
use tonic::metadata::MetadataMap;

use super::metadata::{STATUS_DETAILS, append_from_peerd, to_peerd};
use peerd::rpc::{Code, Status};

/// A peerd status as the agent's gRPC status.
pub fn to_grpc(status: &Status) -> tonic::Status {
    let mut headers = HeaderMap::new();
    append_from_peerd(&mut headers, status.metadata());
    let details = status
        .metadata()
        .get(STATUS_DETAILS)
        .and_then(|text| decode_base64(text))
        .unwrap_or_default();
    tonic::Status::with_details_and_metadata(
        tonic::Code::from_i32(status.code() as i32),
        status.message(),
        details,
        MetadataMap::from_headers(headers),
    )
}

/// An agent's gRPC status as a peerd status.
pub fn from_grpc(status: &tonic::Status) -> Status {
    let code = Code::from_u32(u32::try_from(status.code() as i32).unwrap_or(u32::MAX));
    let mut peerd = Status::new(code, status.message());
    for (key, value) in to_peerd(status.metadata().as_ref()) {
        peerd = peerd.with_metadata(key, value);
    }
    if !status.details().is_empty() {
        peerd = peerd.with_metadata(STATUS_DETAILS, STANDARD_NO_PAD.encode(status.details()));
    }
    peerd
}

/// gRPC's `-bin` values are base64, with or without padding.
fn decode_base64(text: &str) -> Option<Bytes> {
    let trimmed = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD.decode(text))
        .ok()
        .map(Bytes::from)
}

/// The OK ending of an agent's response stream with `trailers`: tonic sends
/// an error item as the stream's trailers, and an OK one as OK.
pub fn ok_with_trailers(status: Option<&Status>) -> tonic::Status {
    let mut headers = HeaderMap::new();
    if let Some(status) = status {
        append_from_peerd(&mut headers, status.metadata());
    }
    tonic::Status::with_metadata(tonic::Code::Ok, "", MetadataMap::from_headers(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_message_trailers_and_details_survive_both_conversions() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-reason", "missing".parse().unwrap());
        let grpc = tonic::Status::with_details_and_metadata(
            tonic::Code::NotFound,
            "no such key",
            Bytes::from_static(&[0, 1, 2, 250]),
            metadata,
        );
        let peerd = from_grpc(&grpc);
        assert_eq!(peerd.code(), Code::NotFound);
        assert_eq!(peerd.message(), "no such key");
        assert_eq!(peerd.metadata()["x-reason"], "missing");
        let back = to_grpc(&peerd);
        assert_eq!(back.code(), tonic::Code::NotFound);
        assert_eq!(back.message(), "no such key");
        assert_eq!(back.details(), &[0, 1, 2, 250]);
        assert_eq!(back.metadata().get("x-reason").unwrap(), "missing");
        assert!(back.metadata().get(STATUS_DETAILS).is_none());
    }

    #[test]
    fn padded_and_unpadded_details_decode() {
        assert_eq!(decode_base64("AAEC+g==").unwrap().as_ref(), &[0, 1, 2, 250]);
        assert_eq!(decode_base64("AAEC+g").unwrap().as_ref(), &[0, 1, 2, 250]);
        assert!(decode_base64("!!").is_none());
    }
}
