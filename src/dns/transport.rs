//! One DNS exchange with the configured servers: UDP with EDNS(0) at the
//! DNS Flag Day payload (1232 bytes), retried over TCP when the answer is
//! truncated (RFC 7766 §5: a truncated answer is never final), each
//! attempt under a deadline, the next server after a failure.

use std::net::SocketAddr;
use std::time::Duration;

use crate::discovery::Malformed;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The EDNS(0) payload size offered (RFC 9715 and DNS Flag Day 2020): no
/// IP fragmentation on any path; larger answers come over TCP.
pub(super) const EDNS_PAYLOAD: u16 = 1232;

/// The largest DNS message read over TCP (its two-byte length prefix).
const MAX_TCP_MESSAGE: usize = 65_535;

/// How a query is flagged.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flags {
    /// DO: ask for DNSSEC records (RFC 4035 §3.2.1).
    pub dnssec_ok: bool,
    /// CD: the resolver must not filter bogus data; this crate validates.
    pub checking_disabled: bool,
    /// AD in the query: ask for the AD bit in the answer (RFC 6840 §5.7).
    pub authentic_data: bool,
}

/// What went wrong with one exchange.
#[derive(Debug)]
pub(super) enum Failure {
    Timeout,
    Network(std::io::ErrorKind),
    Malformed(Malformed),
}

/// The servers and the limits of one exchange.
#[derive(Debug, Clone)]
pub(super) struct Transport {
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: usize,
}

impl Transport {
    /// Asks every server in turn, `attempts` rounds, until one answers with a
    /// usable message (any response code but SERVFAIL and REFUSED, which try
    /// the next server; the last such answer is returned when none does).
    pub async fn exchange(&self, name: &Name, rtype: RecordType, flags: Flags) -> Result<Message, Failure> {
        let mut last = Failure::Timeout;
        let mut last_refusal = None;
        for _ in 0..self.attempts.max(1) {
            for server in &self.servers {
                match self.ask(*server, name, rtype, flags).await {
                    Ok(m) if matches!(m.metadata.response_code, ResponseCode::ServFail | ResponseCode::Refused) => {
                        last_refusal = Some(m)
                    }
                    Ok(m) => return Ok(m),
                    Err(e) => last = e,
                }
            }
        }
        last_refusal.ok_or(last)
    }

    async fn ask(&self, server: SocketAddr, name: &Name, rtype: RecordType, flags: Flags) -> Result<Message, Failure> {
        let id: u16 = rand_id();
        let query = request(id, name, rtype, flags)?;
        let answer = tokio::time::timeout(self.timeout, udp(server, &query)).await.map_err(|_| Failure::Timeout)??;
        let message = check(Message::from_vec(&answer), id, name, rtype)?;
        if !message.metadata.truncation {
            return Ok(message);
        }
        let answer = tokio::time::timeout(self.timeout, tcp(server, &query)).await.map_err(|_| Failure::Timeout)??;
        let message = check(Message::from_vec(&answer), id, name, rtype)?;
        if message.metadata.truncation {
            return Err(Failure::Malformed(Malformed::TruncatedOverTcp));
        }
        Ok(message)
    }
}

fn request(id: u16, name: &Name, rtype: RecordType, flags: Flags) -> Result<Vec<u8>, Failure> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name.clone(), rtype));
    message.metadata.recursion_desired = true;
    message.metadata.checking_disabled = flags.checking_disabled;
    message.metadata.authentic_data = flags.authentic_data;
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns.set_dnssec_ok(flags.dnssec_ok);
    message.set_edns(edns);
    message.to_vec().map_err(|_| Failure::Malformed(Malformed::Encode))
}

/// The answer must be a response to this query (RFC 5452 §4.1: id and
/// question match).
fn check<E: std::fmt::Display>(
    decoded: Result<Message, E>,
    id: u16,
    name: &Name,
    rtype: RecordType,
) -> Result<Message, Failure> {
    let message = decoded.map_err(|_| Failure::Malformed(Malformed::Decode))?;
    let asked = message.queries.first().is_some_and(|q| q.name() == name && q.query_type() == rtype);
    if message.metadata.id != id || message.metadata.message_type != MessageType::Response || !asked {
        return Err(Failure::Malformed(Malformed::WrongAnswer));
    }
    Ok(message)
}

async fn udp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>, Failure> {
    let local: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("a socket address");
    let socket = tokio::net::UdpSocket::bind(local).await.map_err(net)?;
    socket.connect(server).await.map_err(net)?;
    socket.send(query).await.map_err(net)?;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let n = socket.recv(&mut buf).await.map_err(net)?;
        // A datagram too short to carry our id is noise; wait for the answer.
        if n >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut stream = tokio::net::TcpStream::connect(server).await.map_err(net)?;
    let len = u16::try_from(query.len()).map_err(|_| Failure::Malformed(Malformed::QueryTooLong))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(net)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(net)?;
    let len = usize::from(u16::from_be_bytes(len)).min(MAX_TCP_MESSAGE);
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(net)?;
    Ok(buf)
}

fn net(e: std::io::Error) -> Failure {
    Failure::Network(e.kind())
}

/// A query id from the system's randomness (RFC 5452 §9.2), through ring,
/// which the crate already has.
fn rand_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    // SystemRandom fails only when the OS has no randomness at all; a fixed id
    // then still works against a trusted local path.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}
