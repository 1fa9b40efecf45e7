//! Where a run's workers live: threads of this process, or processes of a cluster.
//!
//! A cluster is a list of `host:port` addresses, one per process, in process order (a
//! hostfile, or loopback ports from 2101 by default). Connecting is done here rather than by
//! timely's own set-up, which retries forever and prints to standard output: every process
//! listens on its own address, connects to each process before it and accepts each process
//! after it, all within a deadline, and then hands the sockets to timely.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::{Hooks, WorkerGuards};
use timely::worker::Worker;

use crate::RuntimeError;

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
    /// How long to wait for every peer to connect.
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
        Some(cluster) => {
            let sockets = connect(cluster)?;
            let hooks = Hooks::default();
            let process_allocators = ProcessBuilder::new_typed_vector(
                workers,
                hooks.refill.clone(),
                hooks.spill.clone(),
            );
            let (builders, guard) = initialize_networking_from_sockets(
                process_allocators,
                sockets,
                cluster.process,
                workers,
                hooks,
            )
            .map_err(|error| RuntimeError::Network(error.to_string()))?;
            let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
            timely::execute::execute_from(
                builders,
                Box::new(guard),
                timely::WorkerConfig::default(),
                func,
            )
            .map_err(RuntimeError::Timely)?
        }
    };
    guards
        .join()
        .into_iter()
        .map(|result| result.map_err(RuntimeError::Timely))
        .collect()
}

fn resolve(address: &str) -> Result<SocketAddr, RuntimeError> {
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut found| found.next())
        .ok_or_else(|| RuntimeError::Network(format!("cannot resolve the address `{address}`")))
}

/// One socket per other process (`None` at this process's own index), connected within the
/// cluster's timeout.
fn connect(cluster: &Cluster) -> Result<Vec<Option<TcpStream>>, RuntimeError> {
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
    let mut sockets: Vec<Option<TcpStream>> = (0..count).map(|_| None).collect();
    let timed_out = |peer: usize| RuntimeError::PeerTimeout {
        peer,
        address: cluster.addresses.get(peer).cloned().unwrap_or_default(),
        timeout: cluster.connect_timeout,
    };
    // Connect to every earlier process (each has bound its listener before connecting).
    for (peer, address) in cluster.addresses.iter().enumerate().take(me) {
        let target = resolve(address)?;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timed_out(peer));
            }
            match TcpStream::connect_timeout(&target, remaining) {
                Ok(mut stream) => {
                    let index = u64::try_from(me).unwrap_or(u64::MAX);
                    stream
                        .set_nodelay(true)
                        .and_then(|()| stream.write_all(&index.to_be_bytes()))
                        .map_err(|error| RuntimeError::Network(error.to_string()))?;
                    sockets[peer] = Some(stream);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50).min(remaining)),
            }
        }
    }
    // Accept every later process; each says who it is.
    while let Some(missing) = (me + 1..count).find(|peer| sockets[*peer].is_none()) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(timed_out(missing));
                }
                let mut bytes = [0_u8; 8];
                let read = stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(remaining)))
                    .and_then(|()| stream.read_exact(&mut bytes));
                if read.is_err() {
                    // Not a peer (or a peer that went away): keep waiting for the real one.
                    continue;
                }
                let peer = usize::try_from(u64::from_be_bytes(bytes)).unwrap_or(usize::MAX);
                if peer <= me || peer >= count || sockets[peer].is_some() {
                    continue;
                }
                stream
                    .set_read_timeout(None)
                    .and_then(|()| stream.set_nodelay(true))
                    .map_err(|error| RuntimeError::Network(error.to_string()))?;
                sockets[peer] = Some(stream);
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
    Ok(sockets)
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
