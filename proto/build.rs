fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tributary/v1/catalog.proto",
        "proto/tributary/v1/cluster.proto",
        "proto/tributary/v1/data.proto",
        "proto/tributary/v1/ditto.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
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
