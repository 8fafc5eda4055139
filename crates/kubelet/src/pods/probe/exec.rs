//! exec probes: the command runs in the container through CRI `ExecSync`, with the
//! probe's timeout handed to the runtime (which kills the command when it expires);
//! success iff it exits 0. Its combined output, cut to 10 KiB as upstream does, is the
//! failure message.

use std::time::Duration;

use tonic::Code;

use super::check::Outcome;
use crate::cri::api;
use crate::runtime::RuntimeService;

/// Upstream keeps at most this much of an exec probe's output.
const MAX_OUTPUT: usize = 10 * 1024;

/// How long past the probe timeout we wait for the runtime's answer: it needs a moment to
/// kill the timed-out command and collect it. Upstream waits two minutes; a runtime that
/// has not answered after this long is as good as a failed check, and waiting longer
/// would only stall this probe's loop.
const RUNTIME_GRACE: Duration = Duration::from_secs(30);

pub async fn check(
    runtime: &dyn RuntimeService,
    container_id: &str,
    command: &[String],
    timeout: Duration,
) -> Outcome {
    let request = exec_request(container_id, command, timeout);
    let exec = runtime.exec_sync(&request.container_id, request.cmd, request.timeout);
    match tokio::time::timeout(timeout + RUNTIME_GRACE, exec).await {
        Err(_) => Outcome::Failure(timed_out(command)),
        // containerd answers DeadlineExceeded when the command outlived `timeout`.
        Ok(Err(status)) if status.code() == Code::DeadlineExceeded => {
            Outcome::Failure(timed_out(command))
        }
        Ok(Err(status)) => Outcome::Error(format!(
            "ExecSync in container {container_id}: {}",
            status.message()
        )),
        Ok(Ok(response)) => {
            let output = combined_output(&response.stdout, &response.stderr);
            if response.exit_code == 0 {
                Outcome::Success
            } else {
                Outcome::Failure(output)
            }
        }
    }
}

fn exec_request(container_id: &str, command: &[String], timeout: Duration) -> api::ExecSyncRequest {
    api::ExecSyncRequest {
        container_id: container_id.to_string(),
        cmd: command.to_vec(),
        // Whole seconds, and never 0, which the CRI reads as "no timeout".
        timeout: timeout.as_secs().max(1) as i64,
    }
}

/// stdout then stderr, as upstream joins them, cut to [`MAX_OUTPUT`] bytes (a character
/// cut in half shows as U+FFFD).
fn combined_output(stdout: &[u8], stderr: &[u8]) -> String {
    let mut bytes = Vec::with_capacity((stdout.len() + stderr.len()).min(MAX_OUTPUT));
    bytes.extend_from_slice(&stdout[..stdout.len().min(MAX_OUTPUT)]);
    let room = MAX_OUTPUT - bytes.len();
    bytes.extend_from_slice(&stderr[..stderr.len().min(room)]);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Upstream's message for an exec probe that outlived its timeout.
fn timed_out(command: &[String]) -> String {
    format!("command {:?} timed out", command.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_timeout_in_seconds() {
        let command = vec!["cat".to_string(), "/tmp/healthy".to_string()];
        let request = exec_request("abc123", &command, Duration::from_secs(3));
        assert_eq!(request.container_id, "abc123");
        assert_eq!(request.cmd, command);
        assert_eq!(request.timeout, 3);
        // A sub-second timeout must not become "run forever".
        assert_eq!(
            exec_request("abc123", &command, Duration::from_millis(200)).timeout,
            1
        );
    }

    #[test]
    fn output_is_stdout_then_stderr_capped() {
        assert_eq!(combined_output(b"out\n", b"err\n"), "out\nerr\n");
        let long = vec![b'x'; MAX_OUTPUT + 10];
        assert_eq!(combined_output(&long, b"err").len(), MAX_OUTPUT);
        let half = vec![b'y'; MAX_OUTPUT - 2];
        assert_eq!(
            combined_output(&half, b"error"),
            format!("{}er", "y".repeat(MAX_OUTPUT - 2))
        );
    }

    #[test]
    fn timeouts_name_the_command() {
        let command = vec!["sh".to_string(), "-c".to_string(), "sleep 5".to_string()];
        assert_eq!(timed_out(&command), "command \"sh -c sleep 5\" timed out");
    }
}
