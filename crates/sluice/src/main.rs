//! The `sluice` binary: command line, configuration and wiring.
//!
//! `sluice` (or `sluice serve`) starts the server. Every flag can also be set
//! by an environment variable `SLUICE_<FLAG>`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_server::{App, AppConfig};
use sluice_sqs::{Sqs, SqsConfig};
use sluice_store::{MemoryStore, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "sluice", version, about = "AWS-compatible messaging: SQS today, SNS and Kinesis next")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Data directory of the durable engine.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "sluice-data")]
    data_dir: PathBuf,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long, env = "SLUICE_IN_MEMORY", default_value_t = false)]
    in_memory: bool,
    /// Region reported in ARNs when a request does not name one.
    #[arg(long, env = "SLUICE_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id that owns every resource.
    #[arg(long, env = "SLUICE_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "SLUICE_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        None => cli.serve,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(args))
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    k
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.account_id.len() != 12 || !args.account_id.chars().all(|c| c.is_ascii_digit()) {
        anyhow::bail!("--account-id must be 12 digits, got {:?}", args.account_id);
    }
    let store: Arc<dyn Store> = if args.in_memory {
        Arc::new(MemoryStore::new())
    } else {
        tracing::warn!(
            data_dir = %args.data_dir.display(),
            "the durable engine is not built yet: serving from memory, nothing survives a restart"
        );
        Arc::new(MemoryStore::new())
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let local = listener.local_addr()?;
    let sqs = Sqs::new(
        store.clone(),
        Arc::new(sluice_core::SystemClock),
        SqsConfig { default_host: local.to_string(), receipt_key: random_key() },
    );
    let app = Arc::new(App { sqs, config: AppConfig { region: args.region.clone(), account_id: args.account_id.clone() } });
    let maintenance = sluice_server::spawn_maintenance(&app);
    tracing::info!(listen = %local, engine = store.engine_name(), region = %args.region, "sluice ready");
    sluice_server::serve(listener, app, shutdown_signal()).await?;
    maintenance.abort();
    tracing::info!("sluice stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
