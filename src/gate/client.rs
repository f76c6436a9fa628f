//! Who is at the other end: the client's address, from the socket, or from a forwarding header
//! when (and only when) the socket's peer is a trusted proxy (`GATEWAY_TRUSTED_PROXIES`).
//!
//! Behind Cloudflare (Tunnel or proxy) `CF-Connecting-IP` names the client; behind Traefik,
//! nginx or Caddy `X-Forwarded-For` does, or RFC 7239's `Forwarded: for=`. A forwarding header
//! from any other peer is ignored: anyone can write one. In `X-Forwarded-For` each proxy
//! appends the address it saw, so the list is read from the right, skipping trusted proxies:
//! the first address that is not one of ours is the client (a client's own made-up entries sit
//! further left and are never reached).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The TCP peer of the connection a request came on (set by the server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The client address the gate decided on, for the audit line and the per-address rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Whether `ip` is in any of `nets`.
pub fn in_any(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|net| net.contains(&ip))
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The client's address: the peer's, or the one a trusted proxy forwarded.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !in_any(trusted, peer) {
        return peer;
    }
    if let Some(ip) = header_str(headers, "cf-connecting-ip").and_then(parse_ip) {
        return ip;
    }
    if let Some(ip) = from_forwarded_for(headers, trusted) {
        return ip;
    }
    if let Some(ip) = from_forwarded(headers, trusted) {
        return ip;
    }
    peer
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `1.2.3.4`, `[::1]`, `[::1]:80`, `1.2.3.4:80`, as forwarding headers write them.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let inner = text.strip_prefix('[')?.split(']').next()?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

/// The rightmost address in `X-Forwarded-For` (all such headers, in order) that is not a
/// trusted proxy.
fn from_forwarded_for(headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    rightmost_untrusted(entries.into_iter().rev(), trusted)
}

/// The same for RFC 7239 `Forwarded: for=...` elements.
fn from_forwarded(headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then_some(value)
            })
        })
        .collect();
    rightmost_untrusted(entries.into_iter().rev(), trusted)
}

/// Walk from the nearest hop outwards: skip our own proxies, stop at the first other address.
/// An entry that is not an address (`unknown`, garbage) stops the walk with no answer.
fn rightmost_untrusted<'a>(
    from_nearest: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    for entry in from_nearest {
        let ip = parse_ip(entry)?;
        if !in_any(trusted, ip) {
            return Some(ip);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| n.parse().ok()).collect()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let trusted = nets(&["10.0.0.0/8"]);
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1")]);
        let stranger: IpAddr = "198.51.100.9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(client_addr(stranger, &spoofed, &trusted), stranger);
        let proxy: IpAddr = "10.0.0.2".parse().unwrap_or(stranger);
        let client: IpAddr = "1.1.1.1".parse().unwrap_or(stranger);
        assert_eq!(client_addr(proxy, &spoofed, &trusted), client);
        assert_eq!(client_addr(proxy, &spoofed, &[]), proxy);
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_past_our_proxies() {
        let trusted = nets(&["10.0.0.0/8"]);
        let proxy: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        // The client wrote "6.6.6.6" itself; the first proxy appended what it saw.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.7")]);
        assert_eq!(
            client_addr(proxy, &chain, &trusted),
            IpAddr::from([203, 0, 113, 5])
        );
        let cf = headers(&[
            ("cf-connecting-ip", "2001:db8::1"),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        assert_eq!(client_addr(proxy, &cf, &trusted).to_string(), "2001:db8::1");
        let forwarded = headers(&[(
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.9",
        )]);
        assert_eq!(
            client_addr(proxy, &forwarded, &trusted).to_string(),
            "2001:db8::7"
        );
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_addr(proxy, &garbage, &trusted), proxy);
    }

    #[test]
    fn mapped_ipv4_matches_ipv4_rules() {
        let mapped: IpAddr = "::ffff:192.0.2.1"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(in_any(&nets(&["192.0.2.0/24"]), mapped));
    }
}
