//! What the gateway's gRPC services share: the protobuf form of an instant and the bearer
//! token of a call's metadata.

use time::OffsetDateTime;

/// The protobuf form of an instant (the gateway's gRPC services all answer with these).
pub fn timestamp(t: OffsetDateTime) -> proto::prost_types::Timestamp {
    proto::prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// The token of an `authorization: Bearer <token>` metadata entry (trimmed; empty when the
/// entry has nothing after the scheme).
pub fn bearer(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
