//! The `plugboard` command line: `crd` prints the CustomResourceDefinitions, `run` starts the
//! operator.

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
}

/// `plugboard crd`.
pub fn crd(args: &CrdArgs) -> Result<(), CliError> {
    let Some(dir) = &args.dir else {
        use std::io::Write as _;
        let yaml = crd::all_yaml()?;
        return match std::io::stdout().lock().write_all(yaml.as_bytes()) {
            // `plugboard crd | head` closing the pipe early is not a failure.
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Write {
                path: PathBuf::from("standard output"),
                source: err,
            }),
            _ => Ok(()),
        };
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

/// `plugboard run`.
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    crate::operator::run(args).await?;
    Ok(())
}
