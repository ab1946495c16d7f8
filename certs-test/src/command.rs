//! Running the external tools the fixtures rely on (openssl, softhsm2-util, pkcs11-tool).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use crate::Error;

/// Runs `program` with `args` and, if given, `SOFTHSM2_CONF` in its environment only; returns
/// its standard output, or its standard error as the error when it fails.
pub(crate) fn run<I, S>(
    program: &str,
    args: I,
    softhsm_conf: Option<&Path>,
) -> Result<Vec<u8>, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(conf) = softhsm_conf {
        cmd.env("SOFTHSM2_CONF", conf);
    }
    let out = cmd.output().map_err(|e| Error::Tool {
        tool: program.to_owned(),
        message: format!("cannot run it ({e}); is it installed?"),
    })?;
    if !out.status.success() {
        return Err(Error::Tool {
            tool: program.to_owned(),
            message: format!(
                "exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out.stdout)
}
