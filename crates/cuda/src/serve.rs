//! The worker process: reads [`Request`]s on stdin, measures on its GPU, answers [`Response`]s on stdout.
//!
//! Started by [`CudaBench`](crate::CudaBench) as `<current exe> __worker`. `cargo-autotune` has the
//! hidden `__worker` subcommand; any other binary that tunes (a build script, through
//! `tuner_runtime::build::tune_crate`) calls [`serve_if_worker_arg`] first, so that the same executable
//! can serve as its own worker. The role comes from the argument only, never from the environment, so
//! it is never inherited. The exit code says how it ended: 0 at the end of input, 2 when it could not start,
//! 3 after a config poisoned the context (the parent then starts a fresh worker).
//!
//! The same entry point serves compile requests: a child whose first message is `compile` runs NVRTC
//! over the jobs and exits. NVRTC serialises compilations within a process (measured on the H100 box:
//! 16 threads compiled no faster than one), so a batch is compiled in parallel by several such
//! children; they need no GPU.

use std::io::{BufRead, Write};

use super::bench::Bench;
use super::query_device;
use crate::worker::protocol::{from_hex, to_hex, EvalResult, Failure, FailureKind, Request, Response};

/// The first argument that starts an executable as a worker: `<exe> __worker`. An argument, not an
/// environment variable, so that no child of a worker (a build script run by a `cargo build` started
/// from one) inherits the role.
pub const WORKER_ARG: &str = "__worker";

/// When this process was started as a worker (its first argument is [`WORKER_ARG`]), serves on stdin
/// and stdout and returns the exit code for the caller to exit with; `None` otherwise. A build script's
/// entry calls it first, so that the executable can be its own benchmark worker.
pub fn serve_if_worker_arg() -> Option<i32> {
    (std::env::args_os().nth(1).is_some_and(|a| a == WORKER_ARG)).then(serve_stdio)
}

/// Serves on this process's stdin and stdout; returns the exit code.
pub fn serve_stdio() -> i32 {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    serve(stdin.lock(), stdout.lock())
}

fn send(out: &mut impl Write, msg: &Response) -> bool {
    let line = serde_json::to_string(msg).expect("responses always serialise");
    writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
}

/// Answers a `compile` request: NVRTC for each job in turn, one `compiled` line each.
fn compile_server(
    out: &mut impl Write,
    kernel: &str,
    file_name: &str,
    source: &str,
    arch: &str,
    jobs: &[Vec<String>],
) -> i32 {
    let compiler = match super::Compiler::new(kernel, file_name, source, arch) {
        Ok(c) => c,
        Err(e) => {
            send(out, &Response::Fatal { error: tuner_spec::error_chain(&e) });
            return 2;
        }
    };
    for (index, defines) in jobs.iter().enumerate() {
        let msg = match compiler.compile(defines) {
            Ok(c) => Response::Compiled { index, image: Some(to_hex(&c.image)), log: c.log, compile_ms: c.compile_ms },
            Err(super::CudaError::Compile { log, .. }) => {
                Response::Compiled { index, image: None, log, compile_ms: 0.0 }
            }
            Err(e) => Response::Compiled { index, image: None, log: tuner_spec::error_chain(&e), compile_ms: 0.0 },
        };
        if !send(out, &msg) {
            return 0;
        }
    }
    0
}

/// The worker loop over any line source and sink (a test can drive it with buffers).
pub fn serve(input: impl BufRead, mut out: impl Write) -> i32 {
    let mut lines = input.lines();
    let fatal = |out: &mut dyn Write, error: String| {
        let mut out = out;
        send(&mut out, &Response::Fatal { error });
        2
    };
    let init = match lines.next() {
        Some(Ok(line)) => match serde_json::from_str::<Request>(&line) {
            Ok(Request::Init(init)) => init,
            Ok(Request::Compile { kernel, file_name, source, arch, jobs }) => {
                return compile_server(&mut out, &kernel, &file_name, &source, &arch, &jobs)
            }
            Ok(other) => return fatal(&mut out, format!("expected `init` first, got {other:?}")),
            Err(e) => return fatal(&mut out, format!("cannot parse the init message: {e}")),
        },
        _ => return 0,
    };
    let checked = match init.spec.check() {
        Ok(c) => c,
        Err(e) => return fatal(&mut out, tuner_spec::error_chain(&e)),
    };
    let space = checked.space();
    let setup = (|| {
        let info = query_device(init.device)?;
        let mut bench = Bench::new(&checked, init.options.clone(), info.clone())?;
        let point = space
            .point_of_pairs(init.reference.iter().cloned())
            .map_err(|e| super::CudaError::Protocol(format!("reference config: {e}")))?;
        let image = from_hex(&init.reference_image)
            .ok_or_else(|| super::CudaError::Protocol("reference image is not hex".into()))?;
        let reference = bench.run_reference(&space.config(&point), &image)?;
        Ok::<_, super::CudaError>((info, bench, reference))
    })();
    let (info, mut bench, reference) = match setup {
        Ok(x) => x,
        Err(e) => return fatal(&mut out, tuner_spec::error_chain(&e)),
    };
    if !send(&mut out, &Response::Ready { device: info, reference }) {
        return 0;
    }
    for line in lines {
        let Ok(line) = line else { return 0 };
        let (id, config, image) = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Eval { id, config, image }) => (id, config, image),
            Ok(other) => return fatal(&mut out, format!("expected `eval`, got {other:?}")),
            Err(e) => return fatal(&mut out, format!("cannot parse a request: {e}")),
        };
        let (result, sticky) = match (space.point_of_pairs(config), from_hex(&image)) {
            (Ok(point), Some(image)) => bench.evaluate(&space.config(&point), &image),
            (Err(e), _) => (
                EvalResult::Failed(Failure { kind: FailureKind::Resources, message: format!("not in the space: {e}") }),
                false,
            ),
            (_, None) => (
                EvalResult::Failed(Failure { kind: FailureKind::Launch, message: "the image is not hex".into() }),
                false,
            ),
        };
        if !send(&mut out, &Response::Result { id, result, exiting: sticky }) {
            return 0;
        }
        if sticky {
            eprintln!("autotune worker: the CUDA context is poisoned; exiting so a fresh worker takes over");
            return 3;
        }
    }
    0
}
