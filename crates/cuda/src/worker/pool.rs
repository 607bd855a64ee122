//! A pool of N worker processes that evaluates a batch of jobs, each on whichever worker is free.
//!
//! Each worker is a child process speaking [`protocol`](super::protocol): it gets its `init` line when it
//! starts and answers `ready`; then it gets one job at a time and answers with a `result` carrying the
//! job's id. One reader thread per child turns its stdout into events on a single channel, so the
//! dispatch loop waits on one channel with one deadline: the earliest of the busy workers' job deadlines
//! and the starting workers' init deadlines.
//!
//! What can go wrong, and what it costs:
//! - a job outlives its deadline: the child is killed, the job is a [`FailureKind::Timeout`], and a
//!   fresh child is started when there is more work;
//! - a child dies or reports `fatal` while busy: the job is [`FailureKind::Crashed`] with the exit status;
//! - a child fails to start (spawn error, `fatal`, no `ready` in time) `max_failed_starts` times in a row:
//!   that slot is retired; when every slot is retired, [`Pool::run`] fails with the last reason.
//!
//! With one slot per GPU this is issue 7's multi-GPU pool; CI runs it with plain processes.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::protocol::{EvalResult, Failure, FailureKind, GpuInfo, Measurement, Response};

/// How many workers, and how long to wait for them.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub workers: usize,
    /// The longest one job may take (compile excluded: the parent compiles).
    pub timeout: Duration,
    /// The longest a worker may take to answer `init` with `ready`.
    pub init_timeout: Duration,
    /// Failed starts in a row after which a slot is retired.
    pub max_failed_starts: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            workers: 1,
            timeout: Duration::from_secs(10),
            init_timeout: Duration::from_secs(120),
            max_failed_starts: 3,
        }
    }
}

/// Why the pool cannot evaluate anything.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("no worker could be started (last reason: {last})")]
    NoWorkers { last: String },
}

/// What happened to one job, besides its result.
#[derive(Clone, Debug, PartialEq)]
pub struct JobInfo {
    /// The slot (worker / GPU) that ran it.
    pub slot: usize,
    /// Wall time from dispatch to answer, as the parent saw it.
    pub wall: Duration,
}

/// Counters over the pool's life.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolStats {
    pub started: usize,
    pub timeouts: usize,
    pub crashes: usize,
    /// Workers that answered and then exited because their context was poisoned.
    pub replaced: usize,
}

enum Event {
    Line { slot: usize, generation: u64, line: String },
    Eof { slot: usize, generation: u64 },
}

#[derive(Clone, Copy)]
enum State {
    Down,
    Starting { deadline: Instant },
    Idle,
    Busy { job: usize, sent: Instant, deadline: Instant },
}

struct Slot {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    generation: u64,
    state: State,
    failed_starts: usize,
    retired: bool,
}

type Spawn = Box<dyn Fn(usize) -> Command>;
type InitLine = Box<dyn Fn(usize) -> String>;

/// N worker processes and a dispatch loop.
pub struct Pool {
    spawn: Spawn,
    init: InitLine,
    opts: PoolOptions,
    slots: Vec<Slot>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    devices: Vec<Option<(GpuInfo, Measurement)>>,
    last_error: String,
    pub stats: PoolStats,
}

impl Pool {
    /// A pool whose slot `i` runs `spawn(i)` (stdin and stdout are piped by the pool) and sends it
    /// `init(i)` first. Workers start lazily, when there is work.
    pub fn new(
        opts: PoolOptions,
        spawn: impl Fn(usize) -> Command + 'static,
        init: impl Fn(usize) -> String + 'static,
    ) -> Pool {
        let (tx, rx) = channel();
        let n = opts.workers.max(1);
        Pool {
            spawn: Box::new(spawn),
            init: Box::new(init),
            slots: (0..n)
                .map(|_| Slot {
                    child: None,
                    stdin: None,
                    generation: 0,
                    state: State::Down,
                    failed_starts: 0,
                    retired: false,
                })
                .collect(),
            devices: vec![None; n],
            opts,
            tx,
            rx,
            last_error: String::new(),
            stats: PoolStats::default(),
        }
    }

    /// What each slot's worker reported in `ready` (device and reference measurement), once started.
    pub fn devices(&self) -> &[Option<(GpuInfo, Measurement)>] {
        &self.devices
    }

    /// Starts every slot and waits for all to be ready (or retired); returns the first device.
    pub fn start_all(&mut self) -> Result<(GpuInfo, Measurement), PoolError> {
        for i in 0..self.slots.len() {
            if !self.slots[i].retired && matches!(self.slots[i].state, State::Down) {
                self.start(i);
            }
        }
        while self.slots.iter().any(|s| matches!(s.state, State::Starting { .. })) {
            let mut none: Vec<Option<(EvalResult, JobInfo)>> = Vec::new();
            self.step(&[], &mut none, &mut VecDeque::new());
        }
        self.devices
            .iter()
            .flatten()
            .next()
            .cloned()
            .ok_or_else(|| PoolError::NoWorkers { last: self.last_error.clone() })
    }

    /// Runs `jobs` (`(id, request line)`), each on the first free worker; one result per job, in order.
    pub fn run(&mut self, jobs: &[(u64, String)]) -> Result<Vec<(EvalResult, JobInfo)>, PoolError> {
        let mut results: Vec<Option<(EvalResult, JobInfo)>> = vec![None; jobs.len()];
        let mut queue: VecDeque<usize> = (0..jobs.len()).collect();
        while results.iter().any(Option::is_none) {
            if self.slots.iter().all(|s| s.retired) {
                return Err(PoolError::NoWorkers { last: self.last_error.clone() });
            }
            // Start as many workers as there is queued work for.
            let idle_or_starting =
                self.slots.iter().filter(|s| matches!(s.state, State::Idle | State::Starting { .. })).count();
            let mut wanted = queue.len().saturating_sub(idle_or_starting);
            for i in 0..self.slots.len() {
                if wanted == 0 {
                    break;
                }
                if !self.slots[i].retired && matches!(self.slots[i].state, State::Down) {
                    self.start(i);
                    wanted -= 1;
                }
            }
            // Dispatch.
            for i in 0..self.slots.len() {
                if !matches!(self.slots[i].state, State::Idle) {
                    continue;
                }
                let Some(job) = queue.pop_front() else { break };
                let line = &jobs[job].1;
                let sent = Instant::now();
                let ok =
                    self.slots[i].stdin.as_mut().is_some_and(|w| writeln!(w, "{line}").and_then(|_| w.flush()).is_ok());
                if ok {
                    self.slots[i].state = State::Busy { job, sent, deadline: sent + self.opts.timeout };
                } else {
                    // The worker is gone before it took the job: the job goes back, the EOF restarts it.
                    queue.push_front(job);
                    self.kill(i);
                }
            }
            self.step(jobs, &mut results, &mut queue);
        }
        Ok(results.into_iter().map(|r| r.expect("loop ends when every job has a result")).collect())
    }

    /// Waits for one event or the earliest deadline and handles it.
    fn step(
        &mut self,
        jobs: &[(u64, String)],
        results: &mut [Option<(EvalResult, JobInfo)>],
        queue: &mut VecDeque<usize>,
    ) {
        let now = Instant::now();
        let deadline = self
            .slots
            .iter()
            .filter_map(|s| match s.state {
                State::Starting { deadline } | State::Busy { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min();
        let wait = deadline.map_or(Duration::from_secs(1), |d| d.saturating_duration_since(now));
        match self.rx.recv_timeout(wait) {
            Ok(Event::Line { slot, generation, line }) if generation == self.slots[slot].generation => {
                self.on_line(slot, &line, jobs, results)
            }
            Ok(Event::Eof { slot, generation }) if generation == self.slots[slot].generation => {
                self.on_exit(slot, results, queue)
            }
            Ok(_) => {} // from a worker already replaced
            Err(RecvTimeoutError::Timeout) => self.on_deadlines(results),
            Err(RecvTimeoutError::Disconnected) => unreachable!("the pool holds a sender"),
        }
    }

    fn start(&mut self, i: usize) {
        let mut cmd = (self.spawn)(i);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let slot = &mut self.slots[i];
        slot.generation += 1;
        let generation = slot.generation;
        let started = cmd.spawn().map_err(|e| format!("cannot start worker {i}: {e}")).and_then(|mut child| {
            let stdout = child.stdout.take().ok_or("worker stdout missing")?;
            let mut stdin = child.stdin.take().ok_or("worker stdin missing")?;
            let tx = self.tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(Event::Line { slot: i, generation, line }).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Event::Eof { slot: i, generation });
            });
            // A write error means the child is already gone; its EOF event says so.
            let _ = writeln!(stdin, "{}", (self.init)(i)).and_then(|_| stdin.flush());
            Ok((child, stdin))
        });
        match started {
            Ok((child, stdin)) => {
                self.stats.started += 1;
                slot.child = Some(child);
                slot.stdin = Some(stdin);
                slot.state = State::Starting { deadline: Instant::now() + self.opts.init_timeout };
            }
            Err(e) => {
                self.last_error = e.to_string();
                self.failed_start(i);
            }
        }
    }

    fn failed_start(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.failed_starts += 1;
        slot.state = State::Down;
        if slot.failed_starts >= self.opts.max_failed_starts {
            slot.retired = true;
            eprintln!("autotune: worker {i} retired after {} failed starts: {}", slot.failed_starts, self.last_error);
        }
    }

    fn kill(&mut self, i: usize) -> String {
        let slot = &mut self.slots[i];
        slot.stdin = None;
        slot.state = State::Down;
        // Events from this child are stale from now on.
        slot.generation += 1;
        match slot.child.take() {
            Some(mut c) => {
                let _ = c.kill();
                c.wait().map(|s| s.to_string()).unwrap_or_else(|e| format!("unknown status ({e})"))
            }
            None => "not running".into(),
        }
    }

    fn on_line(&mut self, i: usize, line: &str, jobs: &[(u64, String)], results: &mut [Option<(EvalResult, JobInfo)>]) {
        let msg: Response = match serde_json::from_str(line) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("autotune: worker {i} wrote a line that is not a message ({e}): {line}");
                return;
            }
        };
        match (msg, self.slots[i].state) {
            (Response::Ready { device, reference }, State::Starting { .. }) => {
                self.devices[i] = Some((device, reference));
                self.slots[i].failed_starts = 0;
                self.slots[i].state = State::Idle;
            }
            (Response::Result { id, result, exiting }, State::Busy { job, sent, .. }) if jobs[job].0 == id => {
                let wall = sent.elapsed();
                results[job] = Some((result, JobInfo { slot: i, wall }));
                self.slots[i].state = State::Idle;
                if exiting {
                    // Reap it now: a job sent before its EOF arrives would be lost with it.
                    self.kill(i);
                    self.stats.replaced += 1;
                }
            }
            (Response::Fatal { error }, State::Starting { .. }) => {
                self.last_error = format!("worker {i}: {error}");
                self.kill(i);
                self.failed_start(i);
            }
            (Response::Fatal { error }, State::Busy { job, sent, .. }) => {
                let wall = sent.elapsed();
                self.stats.crashes += 1;
                results[job] = Some((
                    EvalResult::Failed(Failure {
                        kind: FailureKind::Crashed,
                        message: format!("worker failed: {error}"),
                    }),
                    JobInfo { slot: i, wall },
                ));
                self.kill(i);
            }
            (other, _) => eprintln!("autotune: worker {i} sent an unexpected message: {other:?}"),
        }
    }

    fn on_exit(&mut self, i: usize, results: &mut [Option<(EvalResult, JobInfo)>], _queue: &mut VecDeque<usize>) {
        let state = std::mem::replace(&mut self.slots[i].state, State::Down);
        let status = self.kill(i);
        match state {
            State::Busy { job, sent, .. } => {
                self.stats.crashes += 1;
                results[job] = Some((
                    EvalResult::Failed(Failure {
                        kind: FailureKind::Crashed,
                        message: format!("the worker died without answering ({status})"),
                    }),
                    JobInfo { slot: i, wall: sent.elapsed() },
                ));
            }
            State::Starting { .. } => {
                self.last_error = format!("worker {i} exited during start ({status})");
                self.failed_start(i);
            }
            State::Idle | State::Down => {}
        }
    }

    fn on_deadlines(&mut self, results: &mut [Option<(EvalResult, JobInfo)>]) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            match self.slots[i].state {
                State::Busy { job, sent, deadline } if deadline <= now => {
                    self.kill(i);
                    self.stats.timeouts += 1;
                    results[job] = Some((
                        EvalResult::Failed(Failure {
                            kind: FailureKind::Timeout,
                            message: format!(
                                "no answer within {:.1} s; the worker was killed",
                                self.opts.timeout.as_secs_f64()
                            ),
                        }),
                        JobInfo { slot: i, wall: sent.elapsed() },
                    ));
                }
                State::Starting { deadline } if deadline <= now => {
                    self.kill(i);
                    self.last_error = format!("worker {i} was not ready within {:?}", self.opts.init_timeout);
                    self.failed_start(i);
                }
                _ => {}
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for i in 0..self.slots.len() {
            self.kill(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::Measurement;
    use super::*;

    fn ready_line() -> String {
        let device = GpuInfo {
            ordinal: 0,
            name: "Plain Process".into(),
            compute_capability: (9, 0),
            sm_count: 1,
            memory_bytes: 1,
            l2_bytes: 1,
            max_shared_per_block: 1,
            driver: "0".into(),
            nvrtc: "0".into(),
        };
        serde_json::to_string(&Response::Ready { device, reference: measurement() }).unwrap()
    }

    fn measurement() -> Measurement {
        Measurement {
            time_ms: 1.0,
            min_ms: 1.0,
            max_ms: 1.0,
            runs: 5,
            max_abs_err: 0.0,
            worst_index: None,
            registers: 0,
            local_bytes: 0,
            load_ms: 0.0,
            eval_ms: 0.0,
        }
    }

    /// A worker in plain shell: answers every job with a fixed measurement, except jobs whose line says
    /// `hang` (sleeps) or `die` (exits), and a start that fails when `$FAIL_START` is set.
    fn shell_pool(workers: usize, timeout_ms: u64, fail_start: bool) -> Pool {
        let ok = serde_json::to_string(&EvalResult::Ok(measurement())).unwrap();
        let script = format!(
            r#"read -r init || exit 1
               [ -n "$FAIL_START" ] && {{ echo '{{"type":"fatal","error":"no device"}}'; exit 2; }}
               echo '{ready}'
               while read -r line; do
                 id=$(echo "$line" | sed -E 's/.*"id":([0-9]+).*/\1/')
                 case "$line" in
                   *hang*) sleep 30 ;;
                   *die*) exit 3 ;;
                   *poison*) echo '{{"type":"result","id":'"$id"',"result":{ok},"exiting":true}}'; exit 3 ;;
                   *) echo '{{"type":"result","id":'"$id"',"result":{ok}}}' ;;
                 esac
               done"#,
            ready = ready_line(),
        );
        let opts = PoolOptions {
            workers,
            timeout: Duration::from_millis(timeout_ms),
            init_timeout: Duration::from_secs(20),
            max_failed_starts: 2,
        };
        Pool::new(
            opts,
            move |_| {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&script);
                if fail_start {
                    c.env("FAIL_START", "1");
                }
                c
            },
            |i| format!(r#"{{"type":"init","slot":{i}}}"#),
        )
    }

    fn job(id: u64, what: &str) -> (u64, String) {
        (id, format!(r#"{{"type":"eval","id":{id},"what":"{what}"}}"#))
    }

    #[test]
    fn dispatches_to_every_worker_and_survives_hangs_and_deaths() {
        let mut pool = shell_pool(2, 1500, false);
        let mut jobs: Vec<_> = (0..12).map(|i| job(i, "fine")).collect();
        jobs[3] = job(3, "die");
        jobs[7] = job(7, "hang");
        jobs[9] = job(9, "poison");
        let results = pool.run(&jobs).unwrap();
        assert_eq!(results.len(), 12);
        for (i, (r, _)) in results.iter().enumerate() {
            match i {
                3 => assert!(matches!(r, EvalResult::Failed(Failure { kind: FailureKind::Crashed, .. })), "{r:?}"),
                7 => assert!(matches!(r, EvalResult::Failed(Failure { kind: FailureKind::Timeout, .. })), "{r:?}"),
                _ => assert!(matches!(r, EvalResult::Ok(_)), "job {i}: {r:?}"),
            }
        }
        let slots: std::collections::HashSet<usize> = results.iter().map(|(_, info)| info.slot).collect();
        assert_eq!(slots.len(), 2, "both workers took jobs");
        assert_eq!(pool.stats.timeouts, 1);
        assert_eq!(pool.stats.crashes, 1, "a worker that says it exits costs no job");
        assert_eq!(pool.stats.replaced, 1);
        // Two initial workers plus one replacement for each lost one (the last may not be needed).
        assert!(pool.stats.started >= 3, "{:?}", pool.stats);
        assert_eq!(pool.devices()[0].as_ref().unwrap().0.name, "Plain Process");
        // The pool keeps working after the losses.
        let again = pool.run(&[job(100, "fine")]).unwrap();
        assert!(matches!(again[0].0, EvalResult::Ok(_)));
    }

    #[test]
    fn workers_that_cannot_start_are_retired_with_the_reason() {
        let mut pool = shell_pool(2, 1000, true);
        let e = pool.run(&[job(1, "fine")]).unwrap_err();
        assert!(e.to_string().contains("no device"), "{e}");
        let mut pool = shell_pool(1, 1000, true);
        assert!(pool.start_all().is_err());
    }

    #[test]
    fn an_empty_batch_starts_nothing() {
        let mut pool = shell_pool(3, 1000, false);
        assert!(pool.run(&[]).unwrap().is_empty());
        assert_eq!(pool.stats.started, 0);
        let (device, _) = pool.start_all().unwrap();
        assert_eq!(device.name, "Plain Process");
        assert_eq!(pool.stats.started, 3);
    }
}
