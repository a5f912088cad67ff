//! The gRPC contracts of the admission gateway and its backing services: prost messages and
//! tonic clients and servers generated at build time (protox, no system `protoc`) from
//! `proto/proto/**`. Packages: `common.v1` (errors, money, seats, AdminService), `gateway.v1`
//! (QueueService, GatewayService), `reservation.v1` (ReservationService, Inventory,
//! WorkerService) and `payment.v1` (PaymentService).
//!
//! Clients: `reservation::v1::reservation_service_client::ReservationServiceClient`,
//! `reservation::v1::inventory_client::InventoryClient`,
//! `reservation::v1::worker_service_client::WorkerServiceClient`,
//! `payment::v1::payment_service_client::PaymentServiceClient`; servers are the matching
//! `*_server` modules. Failed calls carry an encoded [`common::v1::Error`] in the status
//! details: read it with [`error_of`].

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub use prost;
pub use prost_types;
pub use tonic;

/// The encoded `FileDescriptorSet` of every `.proto` here, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// `pub mod $pkg { pub mod v1 { <the code generated from package "$pkg.v1"> } }`.
macro_rules! package {
    ($(#[$doc:meta])* $pkg:ident, $v1_doc:literal) => {
        $(#[$doc])*
        pub mod $pkg {
            #[doc = $v1_doc]
            #[allow(missing_docs)]
            pub mod v1 {
                // What `tonic::include_proto!` does, with the file named from `$pkg`.
                include!(concat!(env!("OUT_DIR"), "/", stringify!($pkg), ".v1.rs"));
            }
        }
    };
}

package!(
    /// Package `common.v1`.
    common,
    "Shared types: errors, money, seats, and the AdminService."
);
package!(
    /// Package `gateway.v1`.
    gateway,
    "The gateway's QueueService and GatewayService."
);
package!(
    /// Package `reservation.v1`.
    reservation,
    "ReservationService, Inventory and WorkerService."
);
package!(
    /// Package `payment.v1`.
    payment,
    "The PaymentService (simulator)."
);

// Each client defaults to the bare channel; `T` is another transport over it (the gateway's
// layered upstream service).
/// ReservationService client over a shared channel.
pub type ReservationClient<T = tonic::transport::Channel> =
    reservation::v1::reservation_service_client::ReservationServiceClient<T>;
/// Inventory client over a shared channel.
pub type InventoryClient<T = tonic::transport::Channel> =
    reservation::v1::inventory_client::InventoryClient<T>;
/// PaymentService client over a shared channel.
pub type PaymentClient<T = tonic::transport::Channel> =
    payment::v1::payment_service_client::PaymentServiceClient<T>;
/// WorkerService client over a shared channel.
pub type WorkerClient<T = tonic::transport::Channel> =
    reservation::v1::worker_service_client::WorkerServiceClient<T>;
/// AdminService client over a shared channel.
pub type AdminClient =
    common::v1::admin_service_client::AdminServiceClient<tonic::transport::Channel>;

/// A channel to `url` (`http://host:port`) that connects on first use and reconnects by itself:
/// build one per upstream at startup and clone it into clients (clones share the HTTP/2
/// connection). Connects within `connect_timeout`; TCP_NODELAY; HTTP/2 keepalive every 20 s.
/// Per-call deadlines are the caller's (`tonic::Request::set_timeout`, sent as `grpc-timeout`).
pub fn lazy_channel(
    url: &str, connect_timeout: std::time::Duration,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(20))
        .keep_alive_timeout(std::time::Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// The [`common::v1::Error`] carried in a failed call's status details, if any.
pub fn error_of(status: &tonic::Status) -> Option<common::v1::Error> {
    use prost::Message;
    if status.details().is_empty() {
        return None;
    }
    common::v1::Error::decode(status.details()).ok()
}

/// A status with `code` and `message` whose details carry the matching [`common::v1::Error`].
pub fn status_with_error(
    code: tonic::Code, message: impl Into<String>, error: common::v1::Error,
) -> tonic::Status {
    use prost::Message;
    tonic::Status::with_details(code, message, error.encode_to_vec().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn messages_round_trip() {
        let seat = common::v1::Seat {
            seat_id: "A-1".into(),
            section: "A".into(),
            row: "A".into(),
            number: 1,
            price: Some(common::v1::Money {
                amount_cents: 5000,
                currency: "USD".into(),
            }),
            status: common::v1::SeatStatus::Held as i32,
        };
        let req = reservation::v1::CreateReservationRequest {
            event_id: "ev".into(),
            seat_ids: vec!["A-1".into()],
            quantity: 1,
            user_id: "u".into(),
            idempotency_key: "k".into(),
            ..Default::default()
        };
        let back =
            reservation::v1::CreateReservationRequest::decode(&*req.encode_to_vec()).unwrap();
        assert_eq!(back, req);
        assert_eq!(
            common::v1::Seat::decode(&*seat.encode_to_vec()).unwrap(),
            seat
        );
        // Field numbers from the spec: event_id = 1, quantity = 3, idempotency_key = 6.
        assert_eq!(&req.encode_to_vec()[..4], &[0x0a, 2, b'e', b'v']);
    }

    #[test]
    fn services_have_the_spec_method_names() {
        use reservation::v1::inventory_server::SERVICE_NAME as INV;
        use reservation::v1::reservation_service_server::SERVICE_NAME as RES;
        assert_eq!(RES, "reservation.v1.ReservationService");
        assert_eq!(INV, "reservation.v1.Inventory");
        assert_eq!(
            payment::v1::payment_service_server::SERVICE_NAME,
            "payment.v1.PaymentService"
        );
        assert_eq!(
            gateway::v1::queue_service_server::SERVICE_NAME,
            "gateway.v1.QueueService"
        );
        // The method paths tonic routes on are in the generated code.
        let generated = include_str!(concat!(env!("OUT_DIR"), "/reservation.v1.rs"));
        for m in [
            "/reservation.v1.ReservationService/CreateReservation",
            "/reservation.v1.ReservationService/GetReservation",
            "/reservation.v1.Inventory/CheckAvailability",
            "/reservation.v1.Inventory/CommitReservation",
            "/reservation.v1.WorkerService/ProcessPaymentResult",
        ] {
            assert!(generated.contains(m), "{m} missing");
        }
    }

    #[tokio::test]
    async fn lazy_channels_fail_fast_when_nothing_listens() {
        assert!(lazy_channel("not a url", std::time::Duration::from_millis(100)).is_err());
        // Port 1 on loopback refuses: the call fails UNAVAILABLE instead of hanging.
        let ch = lazy_channel("http://127.0.0.1:1", std::time::Duration::from_millis(200)).unwrap();
        let mut c = InventoryClient::new(ch);
        let e = c
            .check_availability(reservation::v1::CheckAvailabilityRequest::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
    }

    #[test]
    fn error_details_survive_a_status() {
        let e = common::v1::Error {
            code: common::v1::ErrorCode::InventoryConflict as i32,
            message: "gone".into(),
            ..Default::default()
        };
        let s = status_with_error(tonic::Code::FailedPrecondition, "gone", e.clone());
        assert_eq!(error_of(&s), Some(e));
        assert_eq!(error_of(&tonic::Status::internal("x")), None);
    }
}
