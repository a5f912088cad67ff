//! Compiles `proto/**/*.proto` with protox (a pure-Rust protobuf compiler: no system `protoc`)
//! and generates prost messages plus tonic clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/common/v1/common.proto",
        "proto/gateway/v1/gateway.proto",
        "proto/reservation/v1/reservation.proto",
        "proto/payment/v1/payment.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    // The descriptor set, for gRPC server reflection (what grpcurl and grpcui ask for).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
