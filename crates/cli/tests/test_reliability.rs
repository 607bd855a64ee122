//! The faults a probe found (issue 19), each as a user or a hostile CI meets it: the real binary, real
//! files, a real SIGINT, a real killed writer. Every case failed on the code before the fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cargo-autotune"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AUTOTUNE_") {
            c.env_remove(k);
        }
    }
    c
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn data(name: &str) -> String {
    root().join("tests/data").join(name).display().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary; asserts the exit code and that stderr has every one of `wanted`.
fn expect(cmd: &mut Command, code: i32, wanted: &[&str]) -> Output {
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{cmd:?}\nstderr: {err}");
    for w in wanted {
        assert!(err.contains(w), "{cmd:?}: missing `{w}` in stderr: {err}");
    }
    out
}

#[test]
fn bad_settings_in_the_environment_are_errors_naming_the_variable() {
    let replay = ["replay", "--table", &data("reduce.json"), "--budget", "5"];
    expect(
        bin().args(replay).env("AUTOTUNE_MAX_EVALUATIONS", "abc"),
        2,
        &["AUTOTUNE_MAX_EVALUATIONS=\"abc\" is not a positive integer"],
    );
    expect(bin().args(replay).env("AUTOTUNE_STRATEGY", "zzz"), 2, &["AUTOTUNE_STRATEGY=\"zzz\" is not one of: random"]);
    expect(
        bin().args(replay).env("AUTOTUNE_POPULATION", "0"),
        2,
        &["AUTOTUNE_POPULATION=\"0\": the population must be at least 1"],
    );
    // A good value is used when no flag overrides it.
    let out = expect(
        bin().args(["replay", "--table", &data("reduce.json"), "--json"]).env("AUTOTUNE_MAX_EVALUATIONS", "7"),
        0,
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["evaluations"], 7);
}

#[test]
fn bad_numbers_on_the_command_line_are_refused_naming_the_flag() {
    let t = data("reduce.json");
    for (flag, value, why) in [
        ("--budget", "0", "the budget must be at least 1 evaluation"),
        ("--population", "0", "the population must be at least 1"),
        ("--temperature", "NaN", "the temperature must be a finite number"),
        ("--temperature", "inf", "the temperature must be a finite number"),
        ("--temperature", "-1", "the temperature must be a finite number"),
    ] {
        expect(bin().args(["replay", "--table", &t, &format!("{flag}={value}")]), 2, &[flag, why]);
    }
    expect(
        bin().args(["bench", "--table", &t, "--strategy", "random", "--seeds", "0"]),
        2,
        &["--seeds", "at least 1 seed"],
    );
    expect(bin().args(["bench", "--table", &t, "--strategy", "random", "--budgets", "5,0"]), 2, &["--budgets"]);
    let out = expect(
        bin().args(["bench", "--table", &t, "--strategy", "random", "--first-seed", "18446744073709551615"]),
        2,
        &["--first-seed and --seeds", "the seeds run past the largest seed"],
    );
    assert!(out.stdout.is_empty(), "nothing was benchmarked");
    expect(
        bin().args(["replay", "--table", &t, "--strategy", "magic"]),
        2,
        &["`magic` is not a strategy; the strategies are: random, de, local, surrogate"],
    );
}

#[cfg(unix)]
fn sigint(pid: u32) {
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_bench_marks_the_run_it_cut_and_exits_130() {
    use std::io::{BufRead, BufReader};
    // 200 seeds of 200 evaluations on the SGEMM table: minutes of work, cut after the first run.
    let sgemm = root().join("tables/h100/sgemm.json").display().to_string();
    let mut child = bin()
        .args(["bench", "--table", &sgemm, "--strategy", "surrogate", "--budgets", "200", "--seeds", "200"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["interrupted"], false, "a finished run says so");
    sigint(child.id());
    let rest: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted bench exits 130");
    // At most the run in progress comes after the signal, marked; the bench did not go on to other seeds.
    assert!(rest.len() <= 1, "the bench went on after Ctrl-C: {} more runs", rest.len());
    if let Some(cut) = rest.first() {
        assert_eq!(cut["interrupted"], true, "{cut}");
        assert!(cut["evaluations"].as_u64().unwrap() < 200, "{cut}");
    }
}

/// A crate with one launcher and its committed entry: a copy of the offline fixture, paths made absolute.
fn fixture(dir: &Path) -> PathBuf {
    let from = root().join("tests/fixtures/offline");
    let to = dir.join("offline");
    copy_dir(&from, &to);
    let manifest = to.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replace("path = \"../../../", &format!("path = \"{}/", root().display()));
    std::fs::write(&manifest, text).unwrap();
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_name() == "target" {
            continue;
        }
        let (s, d) = (e.path(), to.join(e.file_name()));
        if s.is_dir() {
            copy_dir(&s, &d)
        } else {
            std::fs::copy(&s, &d).unwrap();
        }
    }
}

fn check(manifest: &Path) -> Command {
    let mut c = bin();
    c.args(["autotune", "check", "--manifest-path"]).arg(manifest);
    c
}

#[test]
fn check_never_passes_having_checked_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Not a manifest at all.
    let notes = dir.path().join("hostname");
    std::fs::write(&notes, "box\n").unwrap();
    expect(&mut check(&notes), 2, &["is not a Cargo.toml"]);
    // A virtual manifest whose members declare no launcher.
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join("member/src")).unwrap();
    std::fs::write(ws.join("Cargo.toml"), "[workspace]\nmembers = [\"member\"]\nresolver = \"2\"\n").unwrap();
    std::fs::write(
        ws.join("member/Cargo.toml"),
        "[package]\nname = \"member\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(ws.join("member/src/lib.rs"), "pub fn f() {}\n").unwrap();
    expect(&mut check(&ws.join("Cargo.toml")), 2, &["no #[autotune] launcher", "nothing was checked", "member"]);
    // A package with no launcher.
    expect(&mut check(&ws.join("member/Cargo.toml")), 2, &["no #[autotune] launcher"]);
}

#[test]
fn check_from_the_workspace_root_checks_every_member_with_launchers() {
    // This repository, as CI runs it: from the root, no -p.
    let out =
        expect(bin().current_dir(root()).args(["autotune", "check"]), 0, &["ok: 6 kernel(s) in 1 crate(s)", "kernels"]);
    assert!(out.stdout.is_empty());
    // A workspace of its own whose one member has a corrupted entry: exit 1, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let member = fixture(dir.path());
    let manifest = std::fs::read_to_string(member.join("Cargo.toml")).unwrap().replace("\n[workspace]\n", "\n");
    std::fs::write(member.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = [\"offline\"]\nresolver = \"2\"\n").unwrap();
    expect(&mut check(&dir.path().join("Cargo.toml")), 0, &["ok: 1 kernel(s) in 1 crate(s)"]);
    let entry = std::fs::read_dir(member.join("autotune")).unwrap().flatten().next().unwrap().path();
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(&entry, &text[..text.len() / 2]).unwrap();
    let name = entry.file_name().unwrap().to_string_lossy().into_owned();
    expect(&mut check(&dir.path().join("Cargo.toml")), 1, &["invalid: corrupt cache entry", &name]);
}

#[test]
fn stray_files_are_reported_not_fatal_and_a_corrupt_entry_fails_list() {
    let dir = tempfile::tempdir().unwrap();
    let krate = fixture(dir.path());
    let manifest = krate.join("Cargo.toml");
    std::fs::write(krate.join("autotune/scale-notes.json"), "{}").unwrap();
    expect(&mut check(&manifest), 0, &["note:", "scale-notes.json is not a cache entry of any launcher"]);
    let out = expect(bin().args(["list", "--manifest-path"]).arg(&manifest), 0, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("not an entry:"), "{}", String::from_utf8_lossy(&out.stdout));
    // A corrupt entry: the build of that kernel fails, and `list` says so and exits 1.
    let entry = std::fs::read_dir(krate.join("autotune"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.ends_with("scale-notes.json"))
        .unwrap();
    std::fs::write(&entry, "{").unwrap();
    let out = expect(bin().args(["list", "--manifest-path"]).arg(&manifest), 1, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("builds of this kernel fail") && !text.contains("builds use the default"), "{text}");
}

#[test]
fn tune_refuses_a_kernel_no_launcher_has_before_looking_for_a_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let krate = fixture(dir.path());
    expect(
        bin().args(["tune", "--kernel", "scael", "--manifest-path"]).arg(krate.join("Cargo.toml")),
        2,
        &["no #[autotune] launcher is named `scael` (launchers: scale)"],
    );
}

/// Not a test on its own: the writer `a_killed_writer_leaves_a_temp_file_that_check_reports` starts and
/// kills. It begins an atomic write into `AUTOTUNE_TEST_WRITE_INTO`, says so, and waits to be killed.
#[test]
#[ignore = "started by a_killed_writer_leaves_a_temp_file_that_check_reports"]
fn killed_writer_child() {
    use std::io::Write;
    let Some(path) = std::env::var_os("AUTOTUNE_TEST_WRITE_INTO") else { return };
    let mut file = tuner_search::fsutil::AtomicFile::create(Path::new(&path)).unwrap();
    file.write_all(b"{\"format_version\": 1, ").unwrap();
    file.flush().unwrap();
    println!("writing {}", file.temp_path().display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(600));
}

#[cfg(unix)]
#[test]
fn a_killed_writer_leaves_a_temp_file_that_check_reports() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let krate = fixture(dir.path());
    let target = krate.join("autotune/scale-fixture-gpu-000000000000.json");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "killed_writer_child", "--nocapture", "--test-threads", "1"])
        .env("AUTOTUNE_TEST_WRITE_INTO", &target)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let temp = loop {
        let line = lines.next().expect("the writer says where it writes").unwrap();
        // libtest prints `test killed_writer_child ... ` before the test's own output, on the same line.
        if let Some((_, p)) = line.split_once("writing ") {
            break PathBuf::from(p.trim());
        }
    };
    assert!(temp.is_file());
    // While the writer runs, its temporary file is a write in progress: not a problem.
    expect(&mut check(&krate.join("Cargo.toml")), 0, &["ok: 1 kernel(s)"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(temp.is_file(), "a killed writer leaves its temporary file");
    let name = temp.file_name().unwrap().to_string_lossy().into_owned();
    expect(&mut check(&krate.join("Cargo.toml")), 1, &["temporary file", &name, "did not finish", "rm "]);
    // The kernel's entry is still read as before: the temporary file is never taken for it.
    let out = expect(bin().args(["list", "--manifest-path"]).arg(krate.join("Cargo.toml")), 0, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Fixture GPU: best"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
