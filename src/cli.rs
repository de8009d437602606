//! The `plugboard` command line: `crd` prints the CustomResourceDefinitions, `run` starts the
//! operator, `validate` checks manifests, `dev` runs the whole product on one machine.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::crd;
use crate::operator::args::RunArgs;

/// plugboard: connect your SaaS product's tenants to their accounts in external apps,
/// declaratively, on Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "plugboard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions as multi-document YAML (for `kubectl apply -f -`).
    Crd(CrdArgs),
    /// Run the operator against the cluster of the current kubeconfig, or in-cluster.
    Run(Box<RunArgs>),
    /// Check manifests before they are applied: CRD schemas and CEL rules, connector schemas
    /// and templates, the host guard, references and Secret keys. Exits 1 on any error.
    Validate(ValidateArgs),
    /// Run the whole product on this machine: an embedded API server (kubectl works against
    /// it), the operator, and a demo provider; apply `-f` manifests and watch the
    /// Connections. No cluster needed.
    Dev(Box<crate::dev::DevArgs>),
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Files or folders to check (`.yaml`, `.yml`, `.json`, recursively), or `-` for
    /// standard input (for example `kustomize build . | plugboard validate -`).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// As for `plugboard run`: let endpoints on loopback and private addresses pass.
    #[arg(long)]
    pub allow_private_networks: bool,
    /// `text`: one line per problem and a summary; `json`: the same, for machines.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Look references the files do not hold up in the current kubeconfig's cluster
    /// (read-only: GET of Connectors, ClusterConnectors, Tenants and Secrets).
    #[arg(long)]
    pub cluster: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct CrdArgs {
    /// Write one file per CRD into this directory instead of printing to standard output.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Errors the command line reports as its one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot render the CRDs: {0}")]
    Render(#[from] serde_yaml::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Operator(#[from] crate::operator::OperatorError),
    #[error(transparent)]
    Validate(#[from] crate::validate::ValidateError),
    #[error(transparent)]
    Dev(#[from] crate::dev::DevError),
    #[error("--cluster: no cluster to ask: {0}")]
    NoCluster(String),
}

/// `plugboard crd`.
pub fn crd(args: &CrdArgs) -> Result<(), CliError> {
    let Some(dir) = &args.dir else {
        return write_stdout(&crd::all_yaml()?);
    };
    std::fs::create_dir_all(dir).map_err(|source| CliError::Write {
        path: dir.clone(),
        source,
    })?;
    for definition in crd::all() {
        let path = dir.join(crd::file_name(&definition));
        std::fs::write(&path, crd::to_yaml(&definition)?)
            .map_err(|source| CliError::Write { path, source })?;
    }
    Ok(())
}

/// Writes to standard output; a reader that closes the pipe early (`plugboard crd | head`)
/// is not a failure.
fn write_stdout(text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Write {
            path: PathBuf::from("standard output"),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// `plugboard run`.
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    crate::operator::run(args).await?;
    Ok(())
}

/// `plugboard validate`: prints the report; the exit code is 1 when it holds an error.
pub async fn validate(args: &ValidateArgs) -> Result<std::process::ExitCode, CliError> {
    let client = match args.cluster {
        false => None,
        true => Some(
            kube::Client::try_default()
                .await
                .map_err(|err| CliError::NoCluster(err.to_string()))?,
        ),
    };
    let options = crate::validate::Options {
        paths: args.paths.clone(),
        allow_private_networks: args.allow_private_networks,
    };
    let report = crate::validate::run(&options, client.as_ref()).await?;
    let text = match args.output {
        Output::Text => report.text(),
        Output::Json => report.json() + "\n",
    };
    write_stdout(&text)?;
    Ok(if report.errors() > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// `plugboard dev`.
pub async fn dev(args: crate::dev::DevArgs) -> Result<(), CliError> {
    crate::dev::run(args).await?;
    Ok(())
}
