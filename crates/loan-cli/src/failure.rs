//! How a command that failed ends: one `error: …` line on stderr and an exit code.
//!
//! Exit codes are the same for every subcommand: 0 on success; 2 when the request itself is
//! at fault (clap's usage errors, and terms the domain refuses, wrapped in [`InvalidInput`]),
//! so that scripts can tell "fix your input" from 1, "the tool failed" (for instance stdout
//! could not be written). A closed pipe (`loan … | head`) is not a failure.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

/// What was asked cannot be done, whatever the tool does: the arguments parse but the domain
/// refuses them. Ends with exit code 2, like a usage error.
#[derive(Debug)]
pub(crate) struct InvalidInput(pub(crate) String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// Exit code for requests the user must change.
const INVALID_INPUT: u8 = 2;
/// Exit code for failures of the tool itself.
const FAILED: u8 = 1;

/// Reports `outcome` on stderr if it failed, and gives the process's exit code.
pub(crate) fn exit_code(outcome: anyhow::Result<()>) -> ExitCode {
    let Err(error) = outcome else {
        return ExitCode::SUCCESS;
    };
    if is_broken_pipe(&error) {
        // The reader went away (`loan … | head`): nothing left to tell anyone.
        return ExitCode::SUCCESS;
    }
    // If stderr itself cannot be written there is nowhere left to report to; the code still tells.
    let _ = writeln!(io::stderr().lock(), "error: {error:#}");
    if error.chain().any(|cause| cause.is::<InvalidInput>()) {
        ExitCode::from(INVALID_INPUT)
    } else {
        ExitCode::from(FAILED)
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
