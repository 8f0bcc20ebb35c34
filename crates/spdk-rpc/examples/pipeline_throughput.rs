//! Measures calls per second through one client connection against an in-process fake target
//! that answers at once, with 1 call in flight and with many pipelined, untraced and traced
//! (every call recorded into a [`CallTrace`]), and the recorder's own cost per call.
//!
//! `cargo run --release -p v2engine-spdk-rpc --example pipeline_throughput [calls] [in_flight]`
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
use spdk_rpc::{CallTrace, ClientConfig, SpdkClient};
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
    trace: Option<&CallTrace>,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let listener = UnixListener::bind(socket)?;
    let server = tokio::spawn(serve(listener));
    let untraced = SpdkClient::with_config(socket, ClientConfig::default());
    let client = match trace {
        Some(t) => untraced.traced(t),
        None => untraced.clone(),
    };
    // Only `client` may keep the connection open: the server ends when it closes.
    drop(untraced);
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
        let mut per_call = [0.0f64; 2];
        for (i, traced) in [false, true].into_iter().enumerate() {
            let trace = CallTrace::new();
            let elapsed = run(&socket, calls, depth, traced.then_some(&trace)).await?;
            if traced && trace.len() != calls {
                return Err(format!("traced {} of {calls} calls", trace.len()).into());
            }
            let rate = calls as f64 / elapsed.as_secs_f64();
            per_call[i] = elapsed.as_secs_f64() * 1e6 / calls as f64;
            let label = if traced { "traced" } else { "untraced" };
            println!(
                "{calls} calls, {depth:>3} in flight, {label:>8}: {elapsed:>10.2?}  {rate:>10.0} calls/s"
            );
        }
        println!(
            "  tracing changed the time per call by {:+.2} µs",
            per_call[1] - per_call[0]
        );
    }
    // The recorder alone: time, allocate the name, push.
    let trace = CallTrace::new();
    let started = Instant::now();
    for _ in 0..calls {
        trace.start("bdev_wait_for_examine").finish(true);
    }
    let ns = started.elapsed().as_secs_f64() * 1e9 / calls as f64;
    println!(
        "recorder alone: {ns:.0} ns per call ({} recorded)",
        trace.len()
    );
    std::fs::remove_dir(&dir)?;
    Ok(())
}
