//! Where a run's workers live: threads of this process, or processes of a cluster.
//!
//! A cluster is a list of `host:port` addresses, one per process, in process order (a
//! hostfile, or loopback ports from 2101 by default). Connecting is done here rather than by
//! timely's own set-up, which retries forever and prints to standard output: every process
//! listens on its own address, connects to each process before it and accepts each process
//! after it, all within a deadline, and then hands the sockets to timely. Each pair of
//! processes has two connections: the one timely uses, wrapped so that its failures are
//! reported rather than panicking, and a liveness connection that carries heartbeats
//! (`peers.rs`). A process lost mid-run ends the run on every other process with
//! [`RuntimeError::PeerLost`] within the connect timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::{Hooks, WorkerGuards};
use timely::worker::Worker;

use crate::RuntimeError;
use crate::peers::{Liveness, PeerStream, Signal, Watch};

/// The first port of the default loopback addresses.
pub const DEFAULT_BASE_PORT: u16 = 2101;

/// How a run is spread over workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    /// Worker threads in this process (at least 1).
    pub workers: usize,
    /// The other processes of a cluster, when there are any.
    pub cluster: Option<Cluster>,
}

impl Default for Execution {
    fn default() -> Execution {
        Execution {
            workers: 1,
            cluster: None,
        }
    }
}

/// This process's place in a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index into `addresses`.
    pub process: usize,
    /// One `host:port` per process, in process order.
    pub addresses: Vec<String>,
    /// How long to wait for every peer to connect, and how long a connected peer may stay
    /// silent before it counts as lost.
    pub connect_timeout: Duration,
}

impl Cluster {
    /// A cluster of `processes` processes on loopback ports `2101..`; checks `process`.
    pub fn on_loopback(
        processes: usize,
        process: usize,
        connect_timeout: Duration,
    ) -> Result<Cluster, RuntimeError> {
        Cluster::new(default_addresses(processes), process, connect_timeout)
    }

    /// A cluster with the given addresses; checks that `process` indexes them.
    pub fn new(
        addresses: Vec<String>,
        process: usize,
        connect_timeout: Duration,
    ) -> Result<Cluster, RuntimeError> {
        if process >= addresses.len() {
            return Err(RuntimeError::ProcessOutOfRange {
                process,
                processes: addresses.len(),
            });
        }
        Ok(Cluster {
            process,
            addresses,
            connect_timeout,
        })
    }
}

/// `127.0.0.1:2101`, `127.0.0.1:2102`, ...: one loopback address per process.
pub fn default_addresses(processes: usize) -> Vec<String> {
    (0..processes)
        .map(|index| {
            let port = u16::try_from(index)
                .ok()
                .and_then(|offset| DEFAULT_BASE_PORT.checked_add(offset))
                .unwrap_or(u16::MAX);
            format!("127.0.0.1:{port}")
        })
        .collect()
}

/// Parses a hostfile: one `host:port` per line, in process order; blank lines and `#`
/// comments are ignored.
pub fn parse_hostfile(text: &str) -> Result<Vec<String>, RuntimeError> {
    let mut addresses = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let bad = |reason: &str| RuntimeError::Hostfile {
            line: number + 1,
            text: content.to_owned(),
            reason: reason.to_owned(),
        };
        if content.split_whitespace().nth(1).is_some() {
            return Err(bad("expected one `host:port` per line"));
        }
        let Some((host, port)) = content.rsplit_once(':') else {
            return Err(bad("expected `host:port`, e.g. `127.0.0.1:2101`"));
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => {}
            _ => return Err(bad("the port is not a number from 1 to 65535")),
        }
        addresses.push(content.to_owned());
    }
    if addresses.is_empty() {
        return Err(RuntimeError::Hostfile {
            line: 0,
            text: String::new(),
            reason: "the hostfile names no process".to_owned(),
        });
    }
    Ok(addresses)
}

/// Runs `func` on every worker of the execution; returns the workers' results (of this
/// process only).
pub(crate) fn execute<T, F>(execution: &Execution, func: F) -> Result<Vec<T>, RuntimeError>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    let workers = execution.workers.max(1);
    let guards: WorkerGuards<T> = match &execution.cluster {
        None => {
            let config = if workers == 1 {
                timely::Config::thread()
            } else {
                timely::Config::process(workers)
            };
            timely::execute(config, func).map_err(RuntimeError::Timely)?
        }
        Some(cluster) => return execute_on_cluster(cluster, workers, func),
    };
    guards
        .join()
        .into_iter()
        .map(|result| result.map_err(RuntimeError::Timely))
        .collect()
}

/// Runs `func` on this process's workers of a cluster. Returns when they all finished, or as
/// soon as a peer is lost (leaving the run's threads behind, blocked; see `peers.rs`).
fn execute_on_cluster<T, F>(
    cluster: &Cluster,
    workers: usize,
    func: F,
) -> Result<Vec<T>, RuntimeError>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    let network = |error: std::io::Error| RuntimeError::Network(error.to_string());
    let connections = connect(cluster)?;
    let (watch, signals) = Watch::new(cluster.connect_timeout);
    let liveness =
        Liveness::start(cluster.process, connections.liveness, &watch).map_err(network)?;
    let sockets: Vec<Option<PeerStream>> = connections
        .data
        .into_iter()
        .enumerate()
        .map(|(peer, socket)| {
            socket.map(|socket| PeerStream::new(socket, peer, Arc::clone(&watch)))
        })
        .collect();
    let hooks = Hooks::default();
    let process_allocators =
        ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) = initialize_networking_from_sockets(
        process_allocators,
        sockets,
        cluster.process,
        workers,
        hooks,
    )
    .map_err(network)?;
    let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
    let guards: WorkerGuards<T> = timely::execute::execute_from(
        builders,
        Box::new(guard),
        timely::WorkerConfig::default(),
        func,
    )
    .map_err(RuntimeError::Timely)?;
    // Joining blocks until every worker and communication thread finished, which never
    // happens when a peer is lost; so another thread joins, and this one waits for whichever
    // comes first.
    let joining_watch = Arc::clone(&watch);
    let joiner = std::thread::Builder::new()
        .name("graft:join".to_owned())
        .spawn(move || {
            let results = guards.join();
            joining_watch.joined();
            results
        })
        .map_err(network)?;
    let signal = signals.recv();
    watch.settle();
    match signal {
        Ok(Signal::Lost { process, reason }) => {
            liveness.give_up(process);
            Err(RuntimeError::PeerLost {
                process,
                address: cluster.addresses.get(process).cloned().unwrap_or_default(),
                reason,
            })
        }
        Ok(Signal::Joined) | Err(_) => {
            let results = joiner
                .join()
                .map_err(|_| RuntimeError::Timely("the joining thread panicked".to_owned()))?;
            if results.iter().all(Result::is_ok) {
                liveness.finish();
            } else {
                // A worker failed: this process's part of the run is incomplete.
                liveness.give_up(cluster.process);
            }
            results
                .into_iter()
                .map(|result| result.map_err(RuntimeError::Timely))
                .collect()
        }
    }
}

fn resolve(address: &str) -> Result<SocketAddr, RuntimeError> {
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut found| found.next())
        .ok_or_else(|| RuntimeError::Network(format!("cannot resolve the address `{address}`")))
}

/// What a connection between two processes is for; the connecting process says so after its
/// index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// Timely's messages.
    Data = 0,
    /// graft's heartbeats.
    Liveness = 1,
}

/// The connections to the other processes (`None` at this process's own index).
struct Connections {
    data: Vec<Option<TcpStream>>,
    liveness: Vec<Option<TcpStream>>,
}

/// Two connections per other process, made within the cluster's timeout.
fn connect(cluster: &Cluster) -> Result<Connections, RuntimeError> {
    let deadline = Instant::now() + cluster.connect_timeout;
    let me = cluster.process;
    let count = cluster.addresses.len();
    let own = cluster
        .addresses
        .get(me)
        .ok_or(RuntimeError::ProcessOutOfRange {
            process: me,
            processes: count,
        })?;
    let listener = TcpListener::bind(resolve(own)?).map_err(|error| RuntimeError::Listen {
        address: own.clone(),
        reason: error.to_string(),
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|error| RuntimeError::Network(error.to_string()))?;
    let mut connections = Connections {
        data: (0..count).map(|_| None).collect(),
        liveness: (0..count).map(|_| None).collect(),
    };
    let timed_out = |peer: usize| RuntimeError::PeerTimeout {
        peer,
        address: cluster.addresses.get(peer).cloned().unwrap_or_default(),
        timeout: cluster.connect_timeout,
    };
    // Connect to every earlier process (each has bound its listener before connecting).
    for (peer, address) in cluster.addresses.iter().enumerate().take(me) {
        let target = resolve(address)?;
        for purpose in [Purpose::Data, Purpose::Liveness] {
            let stream = loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(timed_out(peer));
                }
                match TcpStream::connect_timeout(&target, remaining) {
                    Ok(mut stream) => {
                        let mut hello =
                            u64::try_from(me).unwrap_or(u64::MAX).to_be_bytes().to_vec();
                        hello.push(purpose as u8);
                        stream
                            .set_nodelay(true)
                            .and_then(|()| stream.write_all(&hello))
                            .map_err(|error| RuntimeError::Network(error.to_string()))?;
                        break stream;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50).min(remaining)),
                }
            };
            match purpose {
                Purpose::Data => connections.data[peer] = Some(stream),
                Purpose::Liveness => connections.liveness[peer] = Some(stream),
            }
        }
    }
    // Accept both connections of every later process; each says who it is and what for.
    let missing = |connections: &Connections| {
        (me + 1..count)
            .find(|peer| connections.data[*peer].is_none() || connections.liveness[*peer].is_none())
    };
    while let Some(missing) = missing(&connections) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(timed_out(missing));
                }
                let mut hello = [0_u8; 9];
                let read = stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(remaining)))
                    .and_then(|()| stream.read_exact(&mut hello));
                if read.is_err() {
                    // Not a peer (or a peer that went away): keep waiting for the real one.
                    continue;
                }
                let mut index = [0_u8; 8];
                index.copy_from_slice(&hello[..8]);
                let peer = usize::try_from(u64::from_be_bytes(index)).unwrap_or(usize::MAX);
                if peer <= me || peer >= count {
                    continue;
                }
                let slot = match hello[8] {
                    purpose if purpose == Purpose::Data as u8 => &mut connections.data[peer],
                    purpose if purpose == Purpose::Liveness as u8 => {
                        &mut connections.liveness[peer]
                    }
                    _ => continue,
                };
                if slot.is_some() {
                    continue;
                }
                stream
                    .set_read_timeout(None)
                    .and_then(|()| stream.set_nodelay(true))
                    .map_err(|error| RuntimeError::Network(error.to_string()))?;
                *slot = Some(stream);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(timed_out(missing));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(RuntimeError::Network(error.to_string())),
        }
    }
    Ok(connections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostfiles_list_addresses_in_order_and_skip_comments() {
        let text = "# the cluster\n127.0.0.1:2101\n\n  host-b:2102  # second\n";
        assert_eq!(
            parse_hostfile(text),
            Ok(vec!["127.0.0.1:2101".to_owned(), "host-b:2102".to_owned()])
        );
    }

    #[test]
    fn bad_hostfile_lines_are_reported_with_their_number() {
        for (text, line) in [
            ("127.0.0.1:2101\nlocalhost\n", 2),
            ("a:0\n", 1),
            ("a:99999\n", 1),
            (":2101\n", 1),
            ("a:1 b:2\n", 1),
        ] {
            match parse_hostfile(text) {
                Err(RuntimeError::Hostfile { line: found, .. }) => {
                    assert_eq!(found, line, "{text:?}")
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        assert!(matches!(
            parse_hostfile("# nothing\n"),
            Err(RuntimeError::Hostfile { line: 0, .. })
        ));
    }

    #[test]
    fn default_addresses_are_loopback_from_2101() {
        assert_eq!(
            default_addresses(2),
            vec!["127.0.0.1:2101".to_owned(), "127.0.0.1:2102".to_owned()]
        );
        assert!(matches!(
            Cluster::on_loopback(2, 2, Duration::from_secs(1)),
            Err(RuntimeError::ProcessOutOfRange {
                process: 2,
                processes: 2
            })
        ));
    }
}
