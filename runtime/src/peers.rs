//! Noticing that a process of a cluster was lost mid-run, and saying which one.
//!
//! Left to itself, timely reacts badly to a lost peer: its communication threads panic when a
//! socket fails (`timely communication error: ...`, with a backtrace), and when a peer stops
//! without closing its sockets (a stopped process, a dead host) every worker waits forever for
//! progress. graft therefore watches each peer in two ways of its own:
//!
//! - **Liveness connections.** Besides the socket timely uses, each pair of processes has a
//!   second connection owned by graft. Each process writes a heartbeat byte on it every
//!   quarter of the connect timeout (at most every second) and reads the peer's with a read
//!   timeout of the connect timeout, so a peer that crashes (its connection closes or resets)
//!   or stops responding (nothing arrives in time) is noticed within the connect timeout. A
//!   process whose run completed says goodbye before closing, so a peer that exits after a
//!   successful run is never reported; a process that gives up says which process it lost,
//!   so that in larger clusters every survivor names the same process.
//! - **Guarded data sockets.** The sockets handed to timely are wrapped in [`PeerStream`],
//!   which follows timely's message framing on the receiving side. A read or write error, or
//!   the stream ending before the peer's final (zero-length) message header, is reported, and
//!   the timely thread that met it is parked for good instead of returning the error, so no
//!   timely thread ever panics. After the final header the peer has finished its part of the
//!   run, and errors on its socket are ignored.
//!
//! The first report reaches the thread running the cluster (`cluster.rs`) as
//! [`Signal::Lost`]; it stops waiting for the workers and returns
//! [`crate::RuntimeError::PeerLost`] at once. The run's timely threads are abandoned (blocked
//! or parked, never panicking): the caller is expected to report the error and exit.
//! Nothing here prints.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use timely::communication::allocator::zero_copy::stream::Stream;

/// What the thread running a cluster hears about.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Every worker (and every communication thread) of this process finished.
    Joined,
    /// A process of the cluster was lost, for the given reason.
    Lost { process: usize, reason: String },
}

/// Shared by everything that watches the peers: where reports go, and whether they still
/// matter.
pub(crate) struct Watch {
    signals: Sender<Signal>,
    /// The run completed or was abandoned: failures are no longer reported.
    settled: AtomicBool,
    /// How long a peer may stay silent.
    timeout: Duration,
}

impl Watch {
    /// A watch with the given liveness deadline, and the receiving end of its signals.
    pub(crate) fn new(timeout: Duration) -> (Arc<Watch>, Receiver<Signal>) {
        let (signals, receiver) = channel();
        let watch = Watch {
            signals,
            settled: AtomicBool::new(false),
            // Sockets refuse a zero timeout.
            timeout: timeout.max(Duration::from_millis(1)),
        };
        (Arc::new(watch), receiver)
    }

    /// Reports that `process` was lost, unless the run is already settled.
    fn report(&self, process: usize, reason: String) {
        if !self.is_settled() {
            // The receiver is gone only once the run is settled.
            let _ = self.signals.send(Signal::Lost { process, reason });
        }
    }

    /// Tells the thread running the cluster that this process's threads all finished.
    pub(crate) fn joined(&self) {
        let _ = self.signals.send(Signal::Joined);
    }

    /// From now on, failures are not reported.
    pub(crate) fn settle(&self) {
        self.settled.store(true, Ordering::SeqCst);
    }

    fn is_settled(&self) -> bool {
        self.settled.load(Ordering::SeqCst)
    }
}

/// A reason an I/O error gives, in words that fit after "was lost mid-run: ".
fn describe(error: &io::Error, timeout: Duration) -> String {
    match error.kind() {
        ErrorKind::ConnectionReset => "the connection was reset".to_owned(),
        ErrorKind::ConnectionAborted => "the connection was aborted".to_owned(),
        ErrorKind::BrokenPipe => "the connection broke".to_owned(),
        ErrorKind::UnexpectedEof => "the connection closed".to_owned(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!(
            "it sent nothing for {}s: stopped, hung or unreachable (a larger --connect-timeout waits longer)",
            timeout.as_secs_f64()
        ),
        _ => error.to_string(),
    }
}

/// Blocks the calling thread for good: a timely communication thread whose peer is lost
/// waits here for the process to exit, rather than panicking.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The bytes of timely's message header (six big-endian `u64`s: channel, source, lowest and
/// highest target, payload length, sequence number).
const HEADER_BYTES: usize = 48;
/// Where the payload length sits in a header.
const LENGTH_AT: usize = 32;

/// Follows timely's framing on a received byte stream: `(header, payload)*` then a header
/// with length zero, after which the sender has finished.
#[derive(Clone, Debug)]
struct Frames {
    header: [u8; HEADER_BYTES],
    /// Bytes of the current header seen so far.
    filled: usize,
    /// Payload bytes of the current message still to come.
    payload: u64,
    /// The final header has been seen.
    finished: bool,
}

impl Default for Frames {
    fn default() -> Frames {
        Frames {
            header: [0; HEADER_BYTES],
            filled: 0,
            payload: 0,
            finished: false,
        }
    }
}

impl Frames {
    fn consume(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.finished {
            if self.payload > 0 {
                let skip = usize::try_from(self.payload)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.payload -= u64::try_from(skip).unwrap_or(u64::MAX);
                bytes = &bytes[skip..];
                continue;
            }
            let take = (HEADER_BYTES - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == HEADER_BYTES {
                self.filled = 0;
                let mut length = [0_u8; 8];
                length.copy_from_slice(&self.header[LENGTH_AT..LENGTH_AT + 8]);
                self.payload = u64::from_be_bytes(length);
                self.finished = self.payload == 0;
            }
        }
    }
}

/// A data socket to one peer, as handed to timely: failures are reported to the [`Watch`]
/// and park the thread that met them (see the module documentation).
pub(crate) struct PeerStream {
    stream: TcpStream,
    link: Arc<Link>,
    /// Meaningful on the clone timely reads from.
    frames: Frames,
}

/// What the clones of one peer's data socket share.
struct Link {
    peer: usize,
    watch: Arc<Watch>,
    /// The peer's final message header was received: it finished its part of the run.
    finished: AtomicBool,
}

impl PeerStream {
    pub(crate) fn new(stream: TcpStream, peer: usize, watch: Arc<Watch>) -> PeerStream {
        PeerStream {
            stream,
            link: Arc::new(Link {
                peer,
                watch,
                finished: AtomicBool::new(false),
            }),
            frames: Frames::default(),
        }
    }

    fn peer_finished(&self) -> bool {
        self.link.finished.load(Ordering::SeqCst)
    }

    fn lost(&self, reason: String) -> ! {
        self.link.watch.report(self.link.peer, reason);
        park_forever()
    }

    fn lost_by(&self, error: &io::Error) -> ! {
        self.lost(describe(error, self.link.watch.timeout))
    }
}

impl Read for PeerStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buffer) {
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                // After its final header the peer only closes the connection; however that
                // looks, it is the end timely waits for.
                Err(_) if self.frames.finished => return Ok(0),
                Err(error) => self.lost_by(&error),
                Ok(0) if !self.frames.finished && !buffer.is_empty() => {
                    self.lost("the connection closed".to_owned())
                }
                Ok(read) => {
                    self.frames.consume(&buffer[..read]);
                    if self.frames.finished {
                        self.link.finished.store(true, Ordering::SeqCst);
                    }
                    return Ok(read);
                }
            }
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        loop {
            match self.stream.write(buffer) {
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                // A peer that finished needs nothing more from this process.
                Err(_) if self.peer_finished() => return Ok(buffer.len()),
                Err(error) => self.lost_by(&error),
                Ok(0) if !buffer.is_empty() => self.lost("the connection closed".to_owned()),
                Ok(written) => return Ok(written),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.stream.flush() {
            Err(_) if self.peer_finished() => Ok(()),
            Err(error) => self.lost_by(&error),
            Ok(()) => Ok(()),
        }
    }
}

impl Stream for PeerStream {
    fn try_clone(&self) -> io::Result<PeerStream> {
        Ok(PeerStream {
            stream: self.stream.try_clone()?,
            link: Arc::clone(&self.link),
            frames: self.frames.clone(),
        })
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.stream.set_nonblocking(nonblocking)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self.stream.shutdown(how) {
            Err(_) if self.peer_finished() => Ok(()),
            Err(error) => self.lost_by(&error),
            Ok(()) => Ok(()),
        }
    }
}

/// A byte on a liveness connection: "still here".
const HEARTBEAT: u8 = b'h';
/// "My run completed": the last byte before the sender closes its side.
const GOODBYE: u8 = b'g';
/// "I give up because process k was lost", followed by k as a big-endian `u64`.
const GIVING_UP: u8 = b'x';

/// What the heartbeat writers are to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Running,
    Finished,
    GaveUp { lost: usize },
}

/// The liveness connections of one process, one writer and one reader thread per peer.
/// Dropped without [`Liveness::finish`] or [`Liveness::give_up`] (the run failed to start),
/// it tells the peers that this process gave up.
pub(crate) struct Liveness {
    /// This process's index.
    process: usize,
    mode: Arc<(Mutex<Mode>, Condvar)>,
    writers: Vec<JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
}

impl Liveness {
    /// Starts the heartbeats on `connections` (one per peer, `None` at this process's own
    /// index).
    pub(crate) fn start(
        process: usize,
        connections: Vec<Option<TcpStream>>,
        watch: &Arc<Watch>,
    ) -> io::Result<Liveness> {
        let mode = Arc::new((Mutex::new(Mode::Running), Condvar::new()));
        let interval = (watch.timeout / 4).min(Duration::from_secs(1));
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for (peer, connection) in connections.into_iter().enumerate() {
            let Some(connection) = connection else {
                continue;
            };
            connection.set_read_timeout(Some(watch.timeout))?;
            connection.set_write_timeout(Some(watch.timeout))?;
            let writing = connection.try_clone()?;
            let writer_mode = Arc::clone(&mode);
            writers.push(
                std::thread::Builder::new()
                    .name(format!("graft:heartbeat-to-{peer}"))
                    .spawn(move || write_heartbeats(writing, &writer_mode, interval))?,
            );
            let reader_watch = Arc::clone(watch);
            readers.push(
                std::thread::Builder::new()
                    .name(format!("graft:heartbeat-from-{peer}"))
                    .spawn(move || read_heartbeats(connection, peer, &reader_watch))?,
            );
        }
        Ok(Liveness {
            process,
            mode,
            writers,
            readers,
        })
    }

    fn set_mode(&self, mode: Mode) {
        let (lock, changed) = &*self.mode;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = mode;
        changed.notify_all();
    }

    /// This process's run completed: says goodbye to every peer, then waits until each has
    /// closed its side (or gone quiet for the connect timeout), so that no connection is
    /// closed with unread bytes (which would reset it before the peer read the goodbye).
    pub(crate) fn finish(mut self) {
        self.set_mode(Mode::Finished);
        let threads = std::mem::take(&mut self.writers)
            .into_iter()
            .chain(std::mem::take(&mut self.readers));
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// This process gives up because `lost` was lost: tells every peer which process it was.
    /// The readers are left running; their reports no longer matter.
    pub(crate) fn give_up(mut self, lost: usize) {
        self.set_mode(Mode::GaveUp { lost });
        for thread in std::mem::take(&mut self.writers) {
            let _ = thread.join();
        }
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        let (lock, _) = &*self.mode;
        let running = *lock.lock().unwrap_or_else(PoisonError::into_inner) == Mode::Running;
        if running {
            self.set_mode(Mode::GaveUp { lost: self.process });
        }
    }
}

/// A writer thread: a heartbeat every `interval` until the run ends, then the last word.
fn write_heartbeats(mut connection: TcpStream, mode: &(Mutex<Mode>, Condvar), interval: Duration) {
    let (lock, changed) = mode;
    loop {
        let current = *lock.lock().unwrap_or_else(PoisonError::into_inner);
        let last: Option<Vec<u8>> = match current {
            Mode::Running => None,
            Mode::Finished => Some(vec![GOODBYE]),
            Mode::GaveUp { lost } => {
                let mut bytes = vec![GIVING_UP];
                bytes.extend(u64::try_from(lost).unwrap_or(u64::MAX).to_be_bytes());
                Some(bytes)
            }
        };
        if let Some(bytes) = last {
            let _ = connection.write_all(&bytes);
            let _ = connection.shutdown(Shutdown::Write);
            return;
        }
        // A failed write means the peer is gone; its reader reports that.
        if connection.write_all(&[HEARTBEAT]).is_err() {
            return;
        }
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = changed
            .wait_timeout_while(guard, interval, |now| *now == Mode::Running)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// A reader thread: reports the peer lost when its connection fails or stays silent for the
/// connect timeout before it said goodbye; drains the connection to its end otherwise.
fn read_heartbeats(mut connection: TcpStream, peer: usize, watch: &Watch) {
    let mut said_goodbye = false;
    let mut byte = [0_u8; 1];
    loop {
        match connection.read(&mut byte) {
            Ok(0) => {
                if !said_goodbye {
                    watch.report(peer, "the connection closed".to_owned());
                }
                return;
            }
            Ok(_) => match byte[0] {
                HEARTBEAT => {}
                GOODBYE => said_goodbye = true,
                GIVING_UP => {
                    let mut index = [0_u8; 8];
                    let reason = match connection.read_exact(&mut index) {
                        Ok(()) => u64::from_be_bytes(index),
                        Err(_) => u64::MAX,
                    };
                    match usize::try_from(reason) {
                        Ok(lost) if lost != peer => {
                            watch.report(lost, format!("process {peer} lost contact with it"));
                        }
                        _ => watch.report(peer, "it gave up".to_owned()),
                    }
                    return;
                }
                other => {
                    watch.report(
                        peer,
                        format!("it sent byte {other} on the liveness connection"),
                    );
                    return;
                }
            },
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                if !said_goodbye {
                    watch.report(peer, describe(&error, watch.timeout));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use timely::communication::networking::MessageHeader;

    use super::*;

    fn header(length: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        MessageHeader {
            channel: 3,
            source: 1,
            target_lower: 0,
            target_upper: 2,
            length,
            seqno: 7,
        }
        .write_to(&mut bytes)
        .expect("a header writes to a vector");
        bytes
    }

    #[test]
    fn frames_follow_timely_headers_to_the_final_one() {
        assert_eq!(header(5).len(), HEADER_BYTES);
        let mut stream = header(5);
        stream.extend([9; 5]);
        stream.extend(header(HEADER_BYTES + 1));
        stream.extend([0; HEADER_BYTES + 1]);
        // A payload that looks like a final header must not end the stream.
        stream.extend(header(0));
        // One byte at a time, and all at once.
        let mut frames = Frames::default();
        for (index, byte) in stream.iter().enumerate() {
            assert!(!frames.finished, "finished early at byte {index}");
            frames.consume(std::slice::from_ref(byte));
        }
        assert!(frames.finished);
        let mut frames = Frames::default();
        frames.consume(&stream[..stream.len() - 1]);
        assert!(!frames.finished);
        frames.consume(&stream[stream.len() - 1..]);
        assert!(frames.finished);
    }
}
