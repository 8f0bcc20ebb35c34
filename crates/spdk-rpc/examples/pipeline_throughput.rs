//! Measures calls per second through one client connection against an in-process fake target
//! that answers at once, with 1 call in flight and with many pipelined.
//!
//! `cargo run -p v2engine-spdk-rpc --example pipeline_throughput [calls] [in_flight]`
//!
//! Against a real spdk_tgt every call costs ≥ 4 ms (its RPC poller runs every 4 ms), so
//! pipelining, not client overhead, decides throughput there; this shows the client's own
//! ceiling.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use spdk_rpc::framing::Decoder;
use spdk_rpc::protocol::decode_response;
use spdk_rpc::types::bdev::BdevWaitForExamine;
use spdk_rpc::{ClientConfig, SpdkClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::Semaphore;

/// Answers every request with `true`, echoing its id; stops when the client disconnects.
async fn serve(listener: UnixListener) -> std::io::Result<()> {
    let (mut stream, _) = listener.accept().await?;
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        decoder.push(&buf[..n]);
        while let Some(request) = decoder.next_value().map_err(std::io::Error::other)? {
            let id = request.get("id").cloned().unwrap_or_default();
            out.extend_from_slice(
                json!({"jsonrpc": "2.0", "id": id, "result": true})
                    .to_string()
                    .as_bytes(),
            );
            out.push(b'\n');
        }
        stream.write_all(&out).await?;
        out.clear();
    }
}

async fn run(
    socket: &Path,
    calls: usize,
    in_flight: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let listener = UnixListener::bind(socket)?;
    let server = tokio::spawn(serve(listener));
    let client = SpdkClient::with_config(socket, ClientConfig::default());
    let limit = Arc::new(Semaphore::new(in_flight));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(calls);
    for _ in 0..calls {
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let ok = client.request(&BdevWaitForExamine).await;
            drop(permit);
            ok
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    drop(client);
    server.await??;
    std::fs::remove_file(socket)?;
    Ok(elapsed)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let calls: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let in_flight: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    // Sanity: the response decoder used by the client accepts what the fake sends.
    decode_response(json!({"jsonrpc": "2.0", "id": 1, "result": true}))?;

    let dir = std::env::temp_dir().join(format!("spdk-rpc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("spdk.sock");
    for depth in [1, in_flight.max(1)] {
        let elapsed = run(&socket, calls, depth).await?;
        let rate = calls as f64 / elapsed.as_secs_f64();
        println!("{calls} calls, {depth:>3} in flight: {elapsed:>10.2?}  {rate:>10.0} calls/s");
    }
    std::fs::remove_dir(&dir)?;
    Ok(())
}
