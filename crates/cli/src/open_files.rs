//! The open-file limit. Every connection is a file descriptor, and most Linux systems start a
//! process with a soft limit of 1,024 open files under a much higher hard limit (524,288 on
//! systemd distributions). The broker and the load generator raise their soft limit to the
//! hard limit when they start, as servers that hold many connections do; only an
//! administrator can raise the hard limit (`ulimit -Hn`, systemd's `LimitNOFILE=`).

/// Files the process needs besides its connections: the store, listeners, the readiness sets,
/// standard streams, certificate and password files read at runtime.
pub(crate) const RESERVED_FILES: u64 = 64;

/// The open-file limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenFiles {
    pub(crate) before: u64,
    pub(crate) now: u64,
}

impl OpenFiles {
    /// About how many connections fit under the limit.
    pub(crate) fn connections(&self) -> u64 {
        self.now.saturating_sub(RESERVED_FILES)
    }
}

/// Raises this process's soft limit on open files to its hard limit.
pub(crate) fn raise() -> std::io::Result<OpenFiles> {
    let (before, _hard) = rlimit::Resource::NOFILE.get()?;
    let now = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(OpenFiles { before, now })
}

/// Raises the limit ([`raise`]) for a process that will hold `wanted` connections (the
/// setting or flag named `what`), and tells the user on standard error when they will not
/// fit or the limit cannot be read. `idle_held` says whether idle connections past the limit
/// may be held without a descriptor (the broker's `idle_without_descriptor`).
pub(crate) fn raise_for(wanted: u64, what: &str, idle_held: bool) {
    match raise() {
        Ok(limit) => {
            if limit.now > limit.before {
                tracing::info!(
                    from = limit.before,
                    to = limit.now,
                    "raised the open-file limit"
                );
            }
            if let Some(warning) = shortfall(&limit, wanted, what, idle_held) {
                eprintln!("{warning}");
            }
        }
        Err(e) => eprintln!("warning: cannot read or raise the open-file limit: {e}"),
    }
}

/// What to tell a user whose limit cannot hold `wanted` connections, or `None` if it can.
pub(crate) fn shortfall(
    limit: &OpenFiles,
    wanted: u64,
    what: &str,
    idle_held: bool,
) -> Option<String> {
    let fit = limit.connections();
    (fit < wanted).then(|| {
        let (can, then) = if idle_held {
            (
                format!("give about {fit} connections a file descriptor each"),
                "; idle connections past that are held without one (`idle_without_descriptor`, \
                 Linux 6.8 or later), but raise the hard limit (`ulimit -Hn`, or \
                 `LimitNOFILE=` in a systemd unit) for more active ones",
            )
        } else {
            (
                format!("hold about {fit} connections"),
                "; raise the hard limit (`ulimit -Hn`, or `LimitNOFILE=` in a systemd unit) \
                 to hold more",
            )
        };
        format!(
            "warning: this process may open {} files, so it can {can}, fewer than {what} = \
             {wanted}{then}",
            limit.now
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit() {
        let limit = raise().unwrap();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(limit.now, soft);
        assert_eq!(soft, hard);
        assert!(limit.now >= limit.before);
    }

    #[test]
    fn a_limit_below_what_is_wanted_is_reported_with_the_setting() {
        let limit = OpenFiles {
            before: 256,
            now: 1024,
        };
        assert_eq!(limit.connections(), 960);
        let message = shortfall(&limit, 10_000, "max_connections", false).unwrap();
        assert!(message.contains("max_connections = 10000"), "{message}");
        assert!(message.contains("hold about 960 connections"), "{message}");
        assert!(message.contains("ulimit -Hn"), "{message}");
        assert_eq!(shortfall(&limit, 960, "max_connections", false), None);
        let message = shortfall(&limit, 10_000, "max_connections", true).unwrap();
        assert!(
            message.contains("about 960 connections a file descriptor"),
            "{message}"
        );
        assert!(message.contains("idle_without_descriptor"), "{message}");
        assert!(message.contains("ulimit -Hn"), "{message}");
    }
}
