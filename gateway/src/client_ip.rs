//! The client's address behind trusted proxies: the socket peer, or, when the peer is a trusted
//! proxy (`--trusted-proxy`), the right-most address of `X-Forwarded-For` (else `Forwarded:
//! for=`) that is not itself a trusted proxy. The rate limits ([`crate::ratelimit`]) key on it.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

fn trusted_by(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client's address: `peer`, unless `peer` is in `trusted`; then the right-most address
/// of `X-Forwarded-For` (all its lines, in order), or of `Forwarded: for=` when there is no
/// `X-Forwarded-For`, that is not in `trusted` (every hop trusted: the left-most). A header
/// that does not parse where it is needed counts as absent: the peer is the client.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !trusted_by(peer, trusted) {
        return peer;
    }
    let hops: Option<Vec<IpAddr>> = if headers.contains_key("x-forwarded-for") {
        hops(headers, "x-forwarded-for", parse_xff_item)
    } else if headers.contains_key("forwarded") {
        hops(headers, "forwarded", parse_forwarded_element)
    } else {
        None
    };
    hops.and_then(|h| pick(&h, trusted)).unwrap_or(peer)
}

/// Hops of one header from left to right, read from the right: an item that does not parse
/// ends the list there (what is left of it cannot be trusted to be in order either).
fn hops(headers: &HeaderMap, name: &str, parse: fn(&str) -> Option<IpAddr>) -> Option<Vec<IpAddr>> {
    let mut items = Vec::new();
    for v in headers.get_all(name) {
        let v = v.to_str().ok()?;
        items.extend(v.split(',').map(str::trim));
    }
    let mut out: Vec<IpAddr> = Vec::new();
    for item in items.iter().rev() {
        match parse(item) {
            Some(ip) => out.push(ip),
            None => break,
        }
    }
    out.reverse();
    (!out.is_empty()).then_some(out)
}

fn pick(hops: &[IpAddr], trusted: &[IpNet]) -> Option<IpAddr> {
    hops.iter()
        .rev()
        .find(|ip| !trusted_by(**ip, trusted))
        .or(hops.first())
        .copied()
}

/// One `X-Forwarded-For` item: an address, optionally with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_xff_item(s: &str) -> Option<IpAddr> {
    parse_node(s.trim_matches('"'))
}

/// One `Forwarded` element (`for=...;proto=...`, RFC 7239): its `for` address.
fn parse_forwarded_element(s: &str) -> Option<IpAddr> {
    s.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(v.trim().trim_matches('"')))
            .flatten()
    })
}

/// A node: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]` or `[::1]:80`. Obfuscated identifiers
/// (`unknown`, `_hidden`) are not addresses.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, _port) = rest.split_once(']')?;
        return ip.parse().ok();
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let t = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &t), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &t), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &[]), ip("10.1.2.3"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &t),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_past_trusted_hops() {
        let t = nets(&["10.0.0.0/8", "fd00::/8"]);
        let peer = ip("10.0.0.1");
        // A client-forged left part does not matter: the right-most untrusted hop is the client.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(client_ip(peer, &h, &t), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9:4711, [fd00::1]:80"),
        ]);
        assert_eq!(client_ip(peer, &h, &t), ip("203.0.113.9"));
        // Every hop trusted: the left-most.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(client_ip(peer, &h, &t), ip("10.9.9.9"));
        // Garbage ends the list: only what is right of it counts.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, nonsense, 203.0.113.9")]);
        assert_eq!(client_ip(peer, &h, &t), ip("203.0.113.9"));
        let h = headers(&[("x-forwarded-for", "nonsense")]);
        assert_eq!(client_ip(peer, &h, &t), peer);
        // IPv6 clients.
        let h = headers(&[("x-forwarded-for", "2001:db8::7")]);
        assert_eq!(client_ip(peer, &h, &t), ip("2001:db8::7"));
    }

    #[test]
    fn forwarded_for_is_used_without_x_forwarded_for() {
        let t = nets(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https, For=10.0.0.2;by=10.0.0.1",
        )]);
        assert_eq!(client_ip(peer, &h, &t), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "proto=https;for=203.0.113.9:80")]);
        assert_eq!(client_ip(peer, &h, &t), ip("203.0.113.9"));
        // An obfuscated node is not an address: the peer.
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(client_ip(peer, &h, &t), peer);
        // X-Forwarded-For wins when both are present.
        let h = headers(&[
            ("forwarded", "for=1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(client_ip(peer, &h, &t), ip("203.0.113.9"));
    }
}
