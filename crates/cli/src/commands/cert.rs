//! `mquictt cert`: makes the certificates a real deployment needs — a CA, server certificates
//! for the broker's names and addresses, client certificates for mutual TLS — as PEM files,
//! with the same ECDSA P-256 keys as the development certificate. Existing files are never
//! overwritten.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use mquictt_transport::{certs::CertError, CertificateAuthority, IssuedCertificate};

/// `mquictt cert`
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    pub command: CertCommand,
}

/// What to create.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Create a certificate authority (ECDSA P-256, valid ten years): DIR/ca.pem and
    /// DIR/ca.key. Clients trust ca.pem (`--cafile`); the broker trusts it for client
    /// certificates (`client_ca`).
    Ca {
        /// Directory to write ca.pem and ca.key to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
    /// Issue a server certificate (valid five years) for the broker's DNS names and IP
    /// addresses: DIR/server.pem and DIR/server.key.
    Server {
        /// Directory holding the CA's ca.pem and ca.key.
        #[arg(long, default_value = ".", value_name = "DIR")]
        ca: PathBuf,
        /// A DNS name or IP address clients use to reach the broker; repeatable.
        #[arg(long = "name", required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Directory to write server.pem and server.key to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
    /// Issue a client certificate (valid five years) whose Common Name is NAME:
    /// DIR/NAME.pem and DIR/NAME.key. With `certificate_username = "cn"` on a listener, NAME
    /// is the client's user name.
    Client {
        /// Directory holding the CA's ca.pem and ca.key.
        #[arg(long, default_value = ".", value_name = "DIR")]
        ca: PathBuf,
        /// The certificate's Common Name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Directory to write NAME.pem and NAME.key to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
    },
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertCommandError {
    #[error("{0} already exists; remove it or choose another --out directory")]
    Exists(PathBuf),
    #[error("cannot create directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} (create a CA first with `mquictt cert ca --out DIR`, then pass --ca DIR)")]
    NoCa(CertError),
    #[error("a client certificate name must be a plain file name: {0:?}")]
    BadName(String),
    #[error(transparent)]
    Cert(#[from] CertError),
}

/// Runs `mquictt cert`.
pub fn run(args: CertArgs) -> Result<(), CertCommandError> {
    match args.command {
        CertCommand::Ca { out } => {
            let (cert, key) = fresh_pair(&out, "ca")?;
            let ca = CertificateAuthority::generate()?;
            ca.write_pem(&cert, &key)?;
            println!(
                "created CA {} and its key {}",
                cert.display(),
                key.display()
            );
        }
        CertCommand::Server { ca, names, out } => {
            let authority = load_ca(&ca)?;
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let issued = authority.issue_server(&names)?;
            write_issued(
                &issued,
                &out,
                "server",
                &format!("server certificate for {names:?}"),
            )?;
        }
        CertCommand::Client { ca, name, out } => {
            if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(CertCommandError::BadName(name));
            }
            let authority = load_ca(&ca)?;
            let issued = authority.issue_client(&name)?;
            write_issued(
                &issued,
                &out,
                &name,
                &format!("client certificate CN={name}"),
            )?;
        }
    }
    Ok(())
}

fn load_ca(dir: &Path) -> Result<CertificateAuthority, CertCommandError> {
    CertificateAuthority::load(&dir.join("ca.pem"), &dir.join("ca.key"))
        .map_err(CertCommandError::NoCa)
}

fn write_issued(
    issued: &IssuedCertificate,
    out: &Path,
    stem: &str,
    what: &str,
) -> Result<(), CertCommandError> {
    let (cert, key) = fresh_pair(out, stem)?;
    issued.write_pem(&cert, &key)?;
    println!(
        "created {what}: {} and its key {} (SHA-256 {})",
        cert.display(),
        key.display(),
        issued.fingerprint()
    );
    Ok(())
}

/// `DIR/STEM.pem` and `DIR/STEM.key`, after making sure neither exists yet.
fn fresh_pair(dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), CertCommandError> {
    std::fs::create_dir_all(dir).map_err(|source| CertCommandError::Directory {
        path: dir.to_path_buf(),
        source,
    })?;
    let cert = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    for path in [&cert, &key] {
        if path.exists() {
            return Err(CertCommandError::Exists(path.clone()));
        }
    }
    Ok((cert, key))
}
