//! `mquictt passwd FILE USER`: adds a user to a password file, changes its password or (with
//! `-D`) deletes it. The password is asked twice on the terminal without echo, or read from
//! the first line of standard input with `-b` (never from the command line, where other users
//! could see it in the process list). The file format and hashing are the broker library's.

use std::io::BufRead;
use std::path::PathBuf;

use mquictt_broker::auth::{PasswordError, PasswordFile};

/// `mquictt passwd`
#[derive(Debug, clap::Args)]
pub struct PasswdArgs {
    /// Password file; created if it does not exist.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The user to add, change or delete.
    #[arg(value_name = "USER")]
    pub user: String,

    /// Batch mode: read the password from the first line of standard input instead of
    /// prompting.
    #[arg(short = 'b', long)]
    pub batch: bool,

    /// Delete the user instead of setting a password.
    #[arg(short = 'D', long, conflicts_with = "batch")]
    pub delete: bool,
}

/// Why the password file was not changed.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error(transparent)]
    File(#[from] PasswordError),
    #[error("user {0:?} is not in the password file")]
    UnknownUser(String),
    #[error("cannot read the password: {0}")]
    Read(std::io::Error),
    #[error("the passwords do not match")]
    Mismatch,
    #[error("the password is empty")]
    Empty,
}

/// What `run` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswdOutcome {
    Added,
    Changed,
    Deleted,
}

/// Runs the command.
pub fn run(args: &PasswdArgs) -> Result<PasswdOutcome, PasswdError> {
    let mut file = match PasswordFile::load(&args.file) {
        Ok(file) => file,
        Err(PasswordError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            PasswordFile::new()
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = if args.delete {
        if !file.remove(&args.user) {
            return Err(PasswdError::UnknownUser(args.user.clone()));
        }
        PasswdOutcome::Deleted
    } else {
        let password = if args.batch {
            read_line(&mut std::io::stdin().lock())?
        } else {
            prompt()?
        };
        let outcome = if file.contains(&args.user) {
            PasswdOutcome::Changed
        } else {
            PasswdOutcome::Added
        };
        file.set_password(&args.user, password.as_bytes())?;
        outcome
    };
    file.save(&args.file)?;
    Ok(outcome)
}

/// The first line of `input`, without its line ending.
fn read_line(input: &mut impl BufRead) -> Result<String, PasswdError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(PasswdError::Read)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(PasswdError::Empty);
    }
    Ok(password)
}

fn prompt() -> Result<String, PasswdError> {
    let first = rpassword::prompt_password("Password: ").map_err(PasswdError::Read)?;
    if first.is_empty() {
        return Err(PasswdError::Empty);
    }
    let second = rpassword::prompt_password("Password again: ").map_err(PasswdError::Read)?;
    if first != second {
        return Err(PasswdError::Mismatch);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_input_is_one_line() {
        let mut input = std::io::Cursor::new("s3cret\r\nignored\n");
        assert_eq!(read_line(&mut input).unwrap(), "s3cret");
        let mut empty = std::io::Cursor::new("\n");
        assert!(matches!(read_line(&mut empty), Err(PasswdError::Empty)));
    }

    #[test]
    fn deleting_an_unknown_user_fails_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let args = PasswdArgs {
            file: dir.path().join("passwd"),
            user: "nobody".into(),
            batch: false,
            delete: true,
        };
        assert!(matches!(run(&args), Err(PasswdError::UnknownUser(_))));
        assert!(!args.file.exists());
    }
}
