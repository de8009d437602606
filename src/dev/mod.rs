//! `plugboard dev`: the whole product on one machine, for trying plugboard and for writing
//! connectors. It starts the embedded API server (plugboard-apiserver, in memory or kept in
//! `--data`), installs the CRDs, writes a kubeconfig for `kubectl`, starts the quickstart's
//! echo provider, runs the operator against it all, applies `-f` manifests, and shows the
//! Connections live until Ctrl-C.

mod apply;
mod echo;
pub mod table;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use kube::Api;
use kube::api::ListParams;

use crate::api::Connection;
use crate::operator::args::RunArgs;

/// A line on standard output; a reader that went away (`plugboard dev | head`) does not
/// stop the server.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// How often the live table asks for the Connections: often enough to feel live, and one
/// list a second is nothing to a local server.
const REFRESH: Duration = Duration::from_secs(1);

#[derive(Args, Debug, Clone)]
pub struct DevArgs {
    /// Manifests to apply once everything runs (files or folders, as `kubectl apply -f`),
    /// for example `-f examples/quickstart/`.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Keep the objects in DIR (one file, `DIR/plugboard.redb`), so the next `plugboard dev`
    /// with the same DIR picks up where this one stopped. In memory when unset.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where to write the kubeconfig for `kubectl` (`KUBECONFIG=... kubectl get connections`).
    #[arg(long, value_name = "FILE", default_value = ".plugboard/kubeconfig")]
    pub kubeconfig_out: PathBuf,
    /// Address of the embedded API server (port 0: any free port; the kubeconfig says which).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub api_listen: SocketAddr,
    /// Address of the operator's HTTP server: the OAuth callback and the connect endpoints;
    /// `--public-url` is `http://` this address, so consent works in a local browser.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the quickstart's echo provider (`GET /me` with `Bearer demo_<anything>`).
    #[arg(long, default_value = "127.0.0.1:8790")]
    pub echo_listen: SocketAddr,
    /// The operator's log filter; its logs go to standard error.
    #[arg(long, default_value = "warn")]
    pub log_level: String,
}

/// Why `plugboard dev` could not run.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("the embedded API server: {0}")]
    ApiServer(#[from] plugboard_apiserver::StartError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the echo provider cannot listen on {addr}: {source}; pick another with --echo-listen")]
    Echo {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the manifests: {0}")]
    Manifests(std::io::Error),
    #[error(transparent)]
    Operator(#[from] crate::operator::OperatorError),
}

/// The operator's flags in dev: everything on loopback, private networks allowed (the echo
/// provider and any local mock live there), and the public URL the browser can reach.
fn run_args(args: &DevArgs) -> RunArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }
    let listen = args.listen.to_string();
    let public = format!("http://{}", args.listen);
    let argv = [
        "plugboard",
        "--listen",
        &listen,
        "--public-url",
        &public,
        "--allow-private-networks",
        "--log-level",
        &args.log_level,
    ];
    Wrapper::parse_from(argv).run
}

/// Runs until Ctrl-C, then stops the operator, the echo provider and the API server.
pub async fn run(args: DevArgs) -> Result<(), DevError> {
    let mut builder = plugboard_apiserver::ApiServer::builder()
        .crds(crate::crd::all())
        .listen(args.api_listen);
    if let Some(dir) = &args.data {
        std::fs::create_dir_all(dir).map_err(|source| DevError::Write {
            path: dir.clone(),
            source,
        })?;
        builder = builder.data(dir.join("plugboard.redb"));
    }
    let server = builder.try_start().await?;
    write_kubeconfig(&server, &args.kubeconfig_out)?;
    let echo = echo::serve(args.echo_listen, stopped())
        .await
        .map_err(|source| DevError::Echo {
            addr: args.echo_listen,
            source,
        })?;
    let client = server.client();
    say!("plugboard dev: API server {}", server.url());
    say!(
        "  kubectl:          KUBECONFIG={} kubectl get connections -A",
        args.kubeconfig_out.display()
    );
    say!("  operator:         http://{}", args.listen);
    say!("  echo provider:    http://{}/me", args.echo_listen);
    let config = kube::Config::new(server.url().parse().expect("the server's URL parses"));
    let operator = tokio::spawn(crate::operator::run_against(run_args(&args), config));
    if !args.files.is_empty() {
        let applied = apply::apply(&client, &args.files)
            .await
            .map_err(DevError::Manifests)?;
        say!("applied {} objects", applied.applied.len());
        for refused in &applied.refused {
            say!("  refused: {refused}");
        }
    }
    say!("Ctrl-C stops everything.\n");
    let watching = watch(client);
    tokio::select! {
        () = watching => {},
        () = stopped() => {},
    }
    let outcome = operator.await;
    let _ = echo.await;
    drop(server);
    say!("plugboard dev: stopped");
    match outcome {
        Ok(result) => result.map_err(DevError::from),
        Err(_) => Ok(()),
    }
}

/// Ctrl-C or SIGTERM, as the operator itself listens for.
async fn stopped() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Shows the Connections until the process is told to stop.
async fn watch(client: kube::Client) {
    let connections: Api<Connection> = Api::all(client);
    let mut view = table::View::new(std::io::stdout().is_terminal());
    loop {
        if let Ok(list) = connections.list(&ListParams::default()).await {
            view.show(&list.items);
        }
        tokio::time::sleep(REFRESH).await;
    }
}

fn write_kubeconfig(
    server: &plugboard_apiserver::ApiServer,
    path: &std::path::Path,
) -> Result<(), DevError> {
    let fail = |source| DevError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    server.write_kubeconfig(path).map_err(fail)
}
