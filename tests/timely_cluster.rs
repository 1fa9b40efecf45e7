//! End-to-end tests of `graft run --engine timely` across processes: a two-process cluster on
//! loopback prints exactly what the reference evaluator prints (process 0 prints, process 1
//! stays silent), and bad cluster configuration — a hostfile that does not parse, a process
//! index out of range, a peer that never connects — is a clear error and exit status 2, never
//! a hang. A process killed or stopped mid-run makes the others exit with status 2 within the
//! connect timeout, with one line naming it, no panic and no output. Every child process is
//! killed if it outlives its deadline.

mod common;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{exit_code, graft, root};

const TWO_PC: [&str; 6] = [
    "run",
    "examples/2pc/2pc.graft",
    "--facts",
    "examples/2pc/topology.facts",
    "--facts",
    "examples/2pc/workload.facts",
];

/// A port base for this test process, away from timely's default 2101 and from other runs of
/// the suite (derived from the process id).
fn port_base(offset: u16) -> u16 {
    let spread = u16::try_from(std::process::id() % 1000).unwrap_or(0);
    30_000 + spread * 20 + offset
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_graft"))
        .current_dir(root())
        .arg("--color=never")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the graft binary starts")
}

/// Waits for a child at most `limit`; kills it and fails the test if it is still running.
#[track_caller]
fn wait(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut stdout = Vec::new();
                let mut stderr = Vec::new();
                if let Some(mut pipe) = child.stdout.take() {
                    pipe.read_to_end(&mut stdout).expect("stdout is readable");
                }
                if let Some(mut pipe) = child.stderr.take() {
                    pipe.read_to_end(&mut stderr).expect("stderr is readable");
                }
                return Output {
                    status,
                    stdout,
                    stderr,
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("graft did not finish within {limit:?}");
            }
        }
    }
}

/// Writes `text` to the file `name` in this test process's temporary directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("graft-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("temp directory");
    let path = directory.join(name);
    std::fs::write(&path, text).expect("hostfile written");
    path
}

fn args(extra: &[&str]) -> Vec<String> {
    TWO_PC
        .iter()
        .chain(extra)
        .map(|arg| (*arg).to_owned())
        .collect()
}

#[test]
fn two_processes_on_loopback_print_what_the_reference_prints() {
    let reference = graft(&args(&["--show", "all", "--engine", "reference"]));
    assert_eq!(exit_code(&reference), 0, "{reference:?}");
    assert!(!reference.stdout.is_empty());
    let base = port_base(0);
    let hosts = temp_file(
        "two.txt",
        &format!(
            "# two processes\n127.0.0.1:{base}\n127.0.0.1:{}\n",
            base + 1
        ),
    );
    let hosts = hosts.display().to_string();
    let mut children = Vec::new();
    for process in ["0", "1"] {
        children.push(spawn(&args(&[
            "--show",
            "all",
            "--engine",
            "timely",
            "--workers",
            "2",
            "--processes",
            "2",
            "--process",
            process,
            "--hostfile",
            &hosts,
            "--connect-timeout",
            "20",
        ])));
    }
    let mut outputs = children
        .into_iter()
        .map(|child| wait(child, Duration::from_secs(60)));
    let first = outputs.next().expect("process 0");
    let second = outputs.next().expect("process 1");
    assert_eq!(exit_code(&first), 0, "{first:?}");
    assert_eq!(exit_code(&second), 0, "{second:?}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&reference.stdout)
    );
    assert!(second.stdout.is_empty(), "process 1 printed {second:?}");
}

#[test]
fn two_processes_default_to_loopback_addresses() {
    // Without a hostfile the processes use 127.0.0.1:2101 and :2102; a clash with another
    // run on those ports would show as a `cannot listen` error, not as wrong output.
    let reference = graft(&args(&["--engine", "reference", "--crash", "p2@2"]));
    let children: Vec<Child> = ["0", "1"]
        .iter()
        .map(|process| {
            spawn(&args(&[
                "--engine",
                "timely",
                "--crash",
                "p2@2",
                "--processes",
                "2",
                "--process",
                process,
                "--connect-timeout",
                "20",
            ]))
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| wait(child, Duration::from_secs(60)))
        .collect();
    let listen_clash = outputs
        .iter()
        .any(|output| String::from_utf8_lossy(&output.stderr).contains("cannot listen"));
    if listen_clash {
        // Another program holds the default ports: the error is the documented one.
        return;
    }
    assert_eq!(exit_code(&outputs[0]), 0, "{:?}", outputs[0]);
    assert_eq!(exit_code(&outputs[1]), 0, "{:?}", outputs[1]);
    assert_eq!(outputs[0].stdout, reference.stdout);
    assert!(outputs[1].stdout.is_empty());
}

#[test]
fn a_hostfile_that_does_not_parse_is_an_error() {
    let hosts = temp_file("bad.txt", "127.0.0.1:2101\nlocalhost\n");
    let output = graft(&args(&[
        "--engine",
        "timely",
        "--process",
        "0",
        "--hostfile",
        &hosts.display().to_string(),
    ]));
    assert_eq!(exit_code(&output), 2, "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not parse"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_process_index_out_of_range_is_an_error() {
    let output = graft(&args(&["--processes", "2", "--process", "2"]));
    assert_eq!(exit_code(&output), 2, "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("out of range"), "{stderr}");
    let missing = graft(&args(&["--processes", "2"]));
    assert_eq!(exit_code(&missing), 2, "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--process"));
}

#[test]
fn a_peer_that_never_connects_times_out() {
    let base = port_base(10);
    let hosts = temp_file(
        "lonely.txt",
        &format!("127.0.0.1:{base}\n127.0.0.1:{}\n", base + 1),
    );
    let started = Instant::now();
    let child = spawn(&args(&[
        "--engine",
        "timely",
        "--process",
        "1",
        "--hostfile",
        &hosts.display().to_string(),
        "--connect-timeout",
        "1",
    ]));
    let output = wait(child, Duration::from_secs(30));
    assert_eq!(exit_code(&output), 2, "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did not connect"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(started.elapsed() < Duration::from_secs(20));
    // Process 0 waiting for a process 1 that never comes also gives up.
    let child = spawn(&args(&[
        "--engine",
        "timely",
        "--process",
        "0",
        "--hostfile",
        &hosts.display().to_string(),
        "--connect-timeout",
        "1",
    ]));
    let output = wait(child, Duration::from_secs(30));
    assert_eq!(exit_code(&output), 2, "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("did not connect"));
}

/// Hops each token makes in `ring_program`: far more ticks than a test waits for (the runs
/// that use it are killed, or the test kills them at its deadline).
const LONG_RUN_HOPS: u32 = 100_000_000;

/// A program in a temporary directory in which eight tokens go round a ring of eight nodes,
/// one hop per tick, for `hops` hops; with its workload. Returns the `graft run` arguments.
fn ring_program(name: &str, hops: u32) -> Vec<String> {
    let program = temp_file(
        &format!("{name}.graft"),
        &format!(
            "// Tokens go round a ring of nodes, one hop per tick, until they made {hops} hops.\n\
             input table next(at: node, peer: node);\n\
             input start(at: node);\n\
             channel token(at: node, origin: node, hop: int);\n\
             output scratch arrived(at: node, origin: node, hop: int);\n\
             \n\
             token(P, N, 1)@async :- start(N), next(N, P);\n\
             token(P, O, H + 1)@async :- token(N, O, H), next(N, P), H < {hops};\n\
             arrived(N, O, H) :- token(N, O, H), H >= {hops};\n"
        ),
    );
    let mut facts = String::new();
    for node in 0..8 {
        facts.push_str(&format!(
            "next(\"n{node}\", \"n{}\")@1;\nstart(\"n{node}\")@1;\n",
            (node + 1) % 8
        ));
    }
    let workload = temp_file(&format!("{name}.facts"), &facts);
    vec![
        "run".to_owned(),
        program.display().to_string(),
        "--facts".to_owned(),
        workload.display().to_string(),
        "--max-ticks".to_owned(),
        (u64::from(hops) + 10).to_string(),
    ]
}

/// Established TCP connections accepted on `port` of 127.0.0.1 (from `/proc/net/tcp`).
fn accepted_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// A child process that is killed when this is dropped (a failing test leaves no long run
/// behind), unless it was taken.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child was not taken")
    }

    fn take(mut self) -> Child {
        self.0.take().expect("the child was not taken")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts a long two-process run of `ring_program` on ports `base` and `base + 1`, and waits
/// until process 1 has made both its connections to process 0 and the run has begun.
fn start_long_two_process_run(name: &str, base: u16, connect_timeout: &str) -> [KillOnDrop; 2] {
    let hosts = temp_file(
        &format!("{name}.hosts"),
        &format!("127.0.0.1:{base}\n127.0.0.1:{}\n", base + 1),
    );
    let hosts = hosts.display().to_string();
    let program = ring_program(name, LONG_RUN_HOPS);
    let start = |process: &str| {
        let mut arguments = program.clone();
        for extra in [
            "--processes",
            "2",
            "--process",
            process,
            "--hostfile",
            &hosts,
            "--connect-timeout",
            connect_timeout,
        ] {
            arguments.push(extra.to_owned());
        }
        KillOnDrop(Some(spawn(&arguments)))
    };
    let mut children = [start("0"), start("1")];
    // Both connections (timely's and the heartbeats') show as established on process 0's
    // port; without /proc this waits out the deadline, long after the processes connected.
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted_on(base) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Time for process 0 to accept them and for both to start their workers.
    std::thread::sleep(Duration::from_secs(2));
    for (process, child) in children.iter_mut().enumerate() {
        if let Ok(Some(status)) = child.child().try_wait() {
            panic!(
                "process {process} of the long run ended early ({status}), before the test stopped its peer"
            );
        }
    }
    children
}

/// The survivor of a lost peer exited with status 2, printed nothing on standard output, and
/// said on one line of standard error which process was lost and where.
#[track_caller]
fn assert_reports_lost(output: &Output, process: usize, address: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(exit_code(output), 2, "{stderr}");
    assert!(output.stdout.is_empty(), "printed {:?}", output.stdout);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: process {process} (`{address}`) was lost mid-run: "
        )),
        "{stderr}"
    );
    assert!(stderr.contains("no output was printed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn a_process_killed_mid_run_is_reported_by_the_survivor() {
    let base = port_base(2);
    let [first, mut second] = start_long_two_process_run("killed-1", base, "10");
    second.child().kill().expect("process 1 is killed");
    let output = wait(first.take(), Duration::from_secs(10 + 30));
    assert_reports_lost(&output, 1, &format!("127.0.0.1:{}", base + 1));
}

#[test]
fn process_0_killed_mid_run_is_reported_by_process_1() {
    let base = port_base(4);
    let [mut first, second] = start_long_two_process_run("killed-0", base, "10");
    first.child().kill().expect("process 0 is killed");
    let output = wait(second.take(), Duration::from_secs(10 + 30));
    assert_reports_lost(&output, 0, &format!("127.0.0.1:{base}"));
}

#[test]
fn a_process_stopped_mid_run_is_reported_after_the_connect_timeout() {
    let base = port_base(6);
    let [first, mut second] = start_long_two_process_run("stopped-1", base, "4");
    let pid = second.child().id().to_string();
    let stopped = Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill runs");
    assert!(stopped.success(), "process 1 could not be stopped");
    // Process 1 stays stopped until it is dropped (killed) at the end of the test.
    let output = wait(first.take(), Duration::from_secs(4 + 30));
    assert_reports_lost(&output, 1, &format!("127.0.0.1:{}", base + 1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sent nothing for 4s"), "{stderr}");
}
#[test]
fn three_processes_print_what_the_reference_prints_and_exit_cleanly() {
    // Every process ends its run and closes its connections in its own time; none of them
    // may take another's normal exit for a loss.
    let program = ring_program("three", 40);
    let mut reference = program.clone();
    reference.extend(["--engine".to_owned(), "reference".to_owned()]);
    let reference = graft(&reference);
    assert_eq!(exit_code(&reference), 0, "{reference:?}");
    assert!(!reference.stdout.is_empty());
    let base = port_base(12);
    let hosts = temp_file(
        "three.hosts",
        &format!(
            "127.0.0.1:{base}\n127.0.0.1:{}\n127.0.0.1:{}\n",
            base + 1,
            base + 2
        ),
    );
    let hosts = hosts.display().to_string();
    let children: Vec<Child> = ["0", "1", "2"]
        .iter()
        .map(|process| {
            let mut arguments = program.clone();
            for extra in [
                "--processes",
                "3",
                "--process",
                process,
                "--hostfile",
                &hosts,
                "--connect-timeout",
                "20",
            ] {
                arguments.push((*extra).to_owned());
            }
            spawn(&arguments)
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| wait(child, Duration::from_secs(60)))
        .collect();
    for (process, output) in outputs.iter().enumerate() {
        assert_eq!(exit_code(output), 0, "process {process}: {output:?}");
        assert!(output.stderr.is_empty(), "process {process}: {output:?}");
    }
    assert_eq!(
        String::from_utf8_lossy(&outputs[0].stdout),
        String::from_utf8_lossy(&reference.stdout)
    );
    assert!(outputs[1].stdout.is_empty() && outputs[2].stdout.is_empty());
}
