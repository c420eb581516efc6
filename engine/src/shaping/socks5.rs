//! The server side of SOCKS5 (RFC 1928) as far as the shaping proxy needs it: no authentication,
//! CONNECT only, to an IPv4/IPv6 address or a DNS name. Anything else is refused with the reply
//! code the RFC defines, so a client sees why instead of a dropped connection.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const VERSION: u8 = 5;
const METHOD_NO_AUTH: u8 = 0x00;
const METHOD_NONE_ACCEPTABLE: u8 = 0xff;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// Why a SOCKS5 exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Socks5Error {
    /// Reading from or writing to the client failed.
    #[error("I/O error during the SOCKS5 handshake: {0}")]
    Io(#[from] io::Error),
    /// The client sent this version byte instead of 5.
    #[error("not a SOCKS5 client (version byte {0}); the node's SOCKS port must point here")]
    Version(u8),
    /// The client does not offer "no authentication", the only method accepted.
    #[error("the client offers no method this proxy accepts (it only takes no authentication)")]
    NoAcceptableMethod,
    /// The client asked for this command, which is not CONNECT.
    #[error("SOCKS5 command {0} is not supported; only CONNECT is")]
    UnsupportedCommand(u8),
    /// The client named the target with this address type, which is not IPv4, IPv6 or a domain name.
    #[error("SOCKS5 address type {0} is not supported")]
    UnsupportedAddressType(u8),
    /// The client sent an empty host name, or one that is not UTF-8.
    #[error("the requested host name is not valid UTF-8 or is empty")]
    BadDomain,
}

/// Where the client wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetAddr {
    /// An IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// A host name (not resolved yet) and port.
    Domain(String, u16),
}

impl TargetAddr {
    /// The `host:port` form used to name the target in routes and stats: host names
    /// lower-cased, IPv6 addresses in brackets.
    pub fn key(&self) -> String {
        match self {
            TargetAddr::Ip(addr) => addr.to_string(),
            TargetAddr::Domain(host, port) => target_key(host, *port),
        }
    }
}

/// The `host:port` key for a target, as [`TargetAddr::key`] writes it.
pub fn target_key(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(':') {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    } else {
        format!("{}:{port}", host.to_ascii_lowercase())
    }
}

/// Reply codes (RFC 1928 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    /// The connection to the target is made.
    Succeeded = 0x00,
    /// Connecting failed for another reason.
    GeneralFailure = 0x01,
    /// The target's network is unreachable.
    NetworkUnreachable = 0x03,
    /// The target host is unreachable (or its name does not resolve).
    HostUnreachable = 0x04,
    /// The target refused the connection.
    ConnectionRefused = 0x05,
    /// Connecting timed out.
    TtlExpired = 0x06,
    /// The command is not CONNECT.
    CommandNotSupported = 0x07,
    /// The address type is not supported.
    AddressTypeNotSupported = 0x08,
}

impl Reply {
    /// The reply that tells the client best why connecting failed. (Name resolution failures
    /// are told apart by the caller, which resolves first: see the proxy.)
    pub fn for_connect_error(e: &io::Error) -> Reply {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => return Reply::ConnectionRefused,
            io::ErrorKind::TimedOut => return Reply::TtlExpired,
            _ => {}
        }
        // The unreachable kinds only became stable in Rust 1.83; the errno says the same.
        #[cfg(unix)]
        match e.raw_os_error() {
            Some(libc::ENETUNREACH) => return Reply::NetworkUnreachable,
            Some(libc::EHOSTUNREACH) => return Reply::HostUnreachable,
            _ => {}
        }
        Reply::GeneralFailure
    }
}

/// Reads the greeting and the request, answering the greeting. On a request this proxy refuses,
/// sends the matching reply before returning the error. On success the caller must answer with
/// [`send_reply`] once it knows whether the target is reachable.
pub async fn read_request<S>(stream: &mut S) -> Result<TargetAddr, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(Socks5Error::Version(head[0]));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    stream.read_exact(&mut methods).await?;
    if !methods.contains(&METHOD_NO_AUTH) {
        stream.write_all(&[VERSION, METHOD_NONE_ACCEPTABLE]).await?;
        return Err(Socks5Error::NoAcceptableMethod);
    }
    stream.write_all(&[VERSION, METHOD_NO_AUTH]).await?;

    let mut req = [0u8; 4];
    stream.read_exact(&mut req).await?;
    if req[0] != VERSION {
        return Err(Socks5Error::Version(req[0]));
    }
    let (cmd, atyp) = (req[1], req[3]);
    let target = match atyp {
        ATYP_IPV4 => {
            let mut b = [0u8; 4];
            stream.read_exact(&mut b).await?;
            let port = stream.read_u16().await?;
            TargetAddr::Ip(SocketAddr::new(Ipv4Addr::from(b).into(), port))
        }
        ATYP_IPV6 => {
            let mut b = [0u8; 16];
            stream.read_exact(&mut b).await?;
            let port = stream.read_u16().await?;
            TargetAddr::Ip(SocketAddr::new(Ipv6Addr::from(b).into(), port))
        }
        ATYP_DOMAIN => {
            let len = stream.read_u8().await?;
            let mut b = vec![0u8; usize::from(len)];
            stream.read_exact(&mut b).await?;
            let port = stream.read_u16().await?;
            match String::from_utf8(b) {
                Ok(host) if !host.is_empty() => TargetAddr::Domain(host, port),
                _ => {
                    send_reply(stream, Reply::HostUnreachable, None).await?;
                    return Err(Socks5Error::BadDomain);
                }
            }
        }
        other => {
            send_reply(stream, Reply::AddressTypeNotSupported, None).await?;
            return Err(Socks5Error::UnsupportedAddressType(other));
        }
    };
    if cmd != CMD_CONNECT {
        send_reply(stream, Reply::CommandNotSupported, None).await?;
        return Err(Socks5Error::UnsupportedCommand(cmd));
    }
    Ok(target)
}

/// Sends a reply; `bound` is the proxy's own address for the outgoing connection (zeros when
/// there is none, as on failure).
pub async fn send_reply<S>(
    stream: &mut S,
    reply: Reply,
    bound: Option<SocketAddr>,
) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let bound = bound.unwrap_or_else(|| SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0));
    let mut out = vec![VERSION, reply as u8, 0x00];
    match bound {
        SocketAddr::V4(a) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    async fn exchange(client_bytes: &[u8]) -> (Result<TargetAddr, Socks5Error>, Vec<u8>) {
        let (mut client, mut server) = duplex(1024);
        client.write_all(client_bytes).await.unwrap();
        let res = read_request(&mut server).await;
        drop(server);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        (res, answer)
    }

    #[tokio::test]
    async fn connect_by_domain_name() {
        let mut req = vec![5, 2, 0x02, 0x00, 5, 1, 0, 3, 9];
        req.extend_from_slice(b"LocalHost");
        req.extend_from_slice(&47211u16.to_be_bytes());
        let (res, answer) = exchange(&req).await;
        let target = res.unwrap();
        assert_eq!(target, TargetAddr::Domain("LocalHost".into(), 47211));
        assert_eq!(target.key(), "localhost:47211");
        assert_eq!(answer, vec![5, 0], "no authentication chosen, no reply yet");
    }

    #[tokio::test]
    async fn connect_by_ip() {
        let mut req = vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
        req.extend_from_slice(&80u16.to_be_bytes());
        let (res, _) = exchange(&req).await;
        assert_eq!(res.unwrap().key(), "127.0.0.1:80");

        let mut req = vec![5, 1, 0, 5, 1, 0, 4];
        req.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        req.extend_from_slice(&443u16.to_be_bytes());
        let (res, _) = exchange(&req).await;
        assert_eq!(res.unwrap().key(), "[::1]:443");
    }

    #[tokio::test]
    async fn refusals_carry_the_right_reply() {
        // Only username/password offered.
        let (res, answer) = exchange(&[5, 1, 2]).await;
        assert!(matches!(res, Err(Socks5Error::NoAcceptableMethod)));
        assert_eq!(answer, vec![5, 0xff]);

        // BIND is not supported.
        let (res, answer) = exchange(&[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80]).await;
        assert!(matches!(res, Err(Socks5Error::UnsupportedCommand(2))));
        assert_eq!(&answer[..4], &[5, 0, 5, 7]);

        // Unknown address type.
        let (res, answer) = exchange(&[5, 1, 0, 5, 1, 0, 9]).await;
        assert!(matches!(res, Err(Socks5Error::UnsupportedAddressType(9))));
        assert_eq!(&answer[..4], &[5, 0, 5, 8]);

        // SOCKS4.
        let (res, _) = exchange(&[4, 1, 0, 80, 127, 0, 0, 1, 0]).await;
        assert!(matches!(res, Err(Socks5Error::Version(4))));
    }

    #[tokio::test]
    async fn replies_encode_the_bound_address() {
        let (mut a, mut b) = duplex(64);
        send_reply(
            &mut a,
            Reply::Succeeded,
            Some("127.0.0.1:5000".parse().unwrap()),
        )
        .await
        .unwrap();
        let mut buf = [0u8; 10];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [5, 0, 0, 1, 127, 0, 0, 1, 0x13, 0x88]);
        send_reply(&mut a, Reply::ConnectionRefused, None)
            .await
            .unwrap();
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn connect_errors_map_to_replies() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(Reply::for_connect_error(&refused), Reply::ConnectionRefused);
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(Reply::for_connect_error(&other), Reply::GeneralFailure);
        #[cfg(unix)]
        {
            let unreachable = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
            assert_eq!(
                Reply::for_connect_error(&unreachable),
                Reply::HostUnreachable
            );
        }
        assert_eq!(target_key("[::1]", 5), "[::1]:5");
        assert_eq!(target_key("::1", 5), "[::1]:5");
    }
}
