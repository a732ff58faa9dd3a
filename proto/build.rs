use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tributary/v1/admin.proto",
        "proto/tributary/v1/catalog.proto",
        "proto/tributary/v1/cluster.proto",
        "proto/tributary/v1/data.proto",
        "proto/tributary/v1/ditto.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    // Server reflection (grpcurl, grpc_cli) serves these descriptors.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("tributary_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .bytes(".tributary.v1")
        // Two entities inline would make every `Command` op twice the size of an `Entity`.
        .boxed(".tributary.v1.UpdateIf.expected")
        .boxed(".tributary.v1.UpdateIf.entity")
        // For `--json` output in tribctl and reports.
        .type_attribute(
            ".tributary.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
