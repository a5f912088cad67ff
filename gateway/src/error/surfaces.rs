//! The table read by the other surfaces: the HTML message pages of the waiting room ([`page`])
//! and the WebSocket close frames of the position stream ([`ws_close`], and the gRPC status
//! the stream of positions ends with, [`grpc_of_ws_close`]).

use super::{ApiError, Kind};
use axum::http::StatusCode;
use queue::QueueError;
use tonic::Code;

/// An error as an HTML message page says it (the waiting-room pages are read by people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The HTTP status.
    pub status: StatusCode,
    /// Title and heading.
    pub title: &'static str,
    /// The paragraph (HTML).
    pub text: &'static str,
    /// The `Retry-After` header; None: reloading does not help.
    pub retry_after: Option<u64>,
}

/// Pages are reloaded by people, not polled by clients: never sooner than this.
pub const PAGE_RETRY_AFTER_SECS: u64 = 5;

/// The message page of an error on a waiting-room page, from the table: a path naming no
/// event is a 404; an error retrying helps with is a "please wait" with the table's delay (at
/// least [`PAGE_RETRY_AFTER_SECS`]); anything else (a bug) a 500 without `Retry-After`.
pub fn page(e: &ApiError) -> Page {
    let kind = e.kind();
    if kind == Kind::MAINTENANCE {
        return Page {
            status: kind.http,
            title: "Down for maintenance",
            text: "The waiting room is down for maintenance. Your place in the queue is kept: leave this page open.",
            retry_after: kind.retry_after,
        };
    }
    if kind == Kind::EVENT_NOT_FOUND || kind == Kind::INVALID_ARGUMENT || kind == Kind::NOT_FOUND {
        return Page {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            text: "There is no waiting room here.",
            retry_after: None,
        };
    }
    match e.retry_after() {
        Some(secs) => Page {
            status: kind.http,
            title: "Please wait",
            text: "The waiting room is busy. This page will be back in a moment; try reloading shortly.",
            retry_after: Some(secs.max(PAGE_RETRY_AFTER_SECS)),
        },
        None => Page {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong",
            text: "The waiting room cannot show this page. Reloading will not help; please try again later.",
            retry_after: None,
        },
    }
}

/// The WebSocket close frame (code, reason) of a failure to read the place at connect, from
/// the table: 1013 (try again later) when retrying can help, otherwise 4000 + the HTTP status
/// (4404 for an event that does not exist), so that clients stop reconnecting.
pub fn ws_close(e: &QueueError) -> (u16, &'static str) {
    let kind = Kind::of_queue(e);
    if kind.retry_after.is_some() {
        (1013, "queue unavailable, retry")
    } else if kind == Kind::EVENT_NOT_FOUND {
        (4404, "event not found")
    } else {
        (4000 + kind.http.as_u16(), kind.code)
    }
}

/// The gRPC status of a WebSocket close frame of [`ws_close`] (the gRPC stream of positions
/// ends as the socket does); None for a normal close.
pub fn grpc_of_ws_close(code: u16, reason: &str) -> Option<tonic::Status> {
    let grpc = match code {
        1013 => Code::Unavailable,
        4000..=4999 => Kind::ALL
            .iter()
            .find(|k| k.http.as_u16() == code - 4000)
            .map_or(Code::Unknown, |k| k.grpc),
        _ => return None,
    };
    Some(tonic::Status::new(grpc, reason.to_owned()))
}
