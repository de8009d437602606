//! The SSRF guard: which hosts a rendered URL may reach.
//!
//! Templates put user input into URLs (`https://{{ input.subdomain }}.example.com`), so a
//! Connection could otherwise point the operator at the cloud metadata address or a service
//! inside the cluster. Two rules apply: the host must match the connector's `allowedHosts`
//! (the literal host of `apiClient.baseUri` is always allowed), and it must not be or resolve
//! to a loopback, link-local, private or otherwise internal address unless the operator runs
//! with `--allow-private-networks`. The address rule is enforced where connections are made
//! (a resolver that drops such addresses), so DNS rebinding between check and connect gains
//! nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use globset::{Glob, GlobMatcher};
use url::{Host, Url};

/// A host that may not be reached, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BlockedHost {
    pub reason: String,
}

/// The hosts one connector may reach.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    literal: Option<String>,
    patterns: Vec<(String, GlobMatcher)>,
}

impl AllowedHosts {
    /// `base_uri` is the API client's base URI as written in the connector (before rendering);
    /// its host counts only when it has no template in it.
    pub fn new(base_uri: &str, patterns: &[String]) -> Result<Self, BlockedHost> {
        let literal = Url::parse(base_uri)
            .ok()
            .filter(|_| !base_uri.contains("{{") && !base_uri.contains("{%"))
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
        let patterns = patterns
            .iter()
            .map(|p| {
                let glob = Glob::new(&p.to_ascii_lowercase()).map_err(|err| BlockedHost {
                    reason: format!("allowedHosts pattern {p:?} is not a valid glob: {err}"),
                })?;
                Ok((p.clone(), glob.compile_matcher()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { literal, patterns })
    }

    /// Checks a rendered URL: scheme, allow-list, and (for IP literals) the address rule.
    pub fn check(&self, url: &Url, allow_private: bool) -> Result<(), BlockedHost> {
        if !matches!(url.scheme(), "https" | "http") {
            return Err(BlockedHost {
                reason: format!("scheme {:?} is not allowed; use https", url.scheme()),
            });
        }
        let host = url
            .host_str()
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| BlockedHost {
                reason: "the URL has no host".to_owned(),
            })?;
        let listed = self.literal.as_deref() == Some(host.as_str())
            || self.patterns.iter().any(|(_, m)| m.is_match(&host));
        if !listed {
            return Err(BlockedHost {
                reason: format!(
                    "host {host:?} is not in apiClient.allowedHosts (allowed: {})",
                    self.describe()
                ),
            });
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match ip {
            Some(ip) if !allow_private && is_internal(ip) => Err(BlockedHost {
                reason: format!("host {host:?} is an internal address"),
            }),
            _ => Ok(()),
        }
    }

    fn describe(&self) -> String {
        let mut all: Vec<&str> = self.literal.iter().map(String::as_str).collect();
        all.extend(self.patterns.iter().map(|(p, _)| p.as_str()));
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    }
}

/// Checks a provider endpoint the connector names directly (token, authorize, revoke): http(s)
/// only, and no internal IP literal. Names are checked where connections are made, by
/// `GuardedResolver`; an IP literal never reaches a resolver, so it is checked here.
pub fn check_endpoint(uri: &str, allow_private: bool) -> Result<(), BlockedHost> {
    let url = Url::parse(uri).map_err(|err| BlockedHost {
        reason: format!("not a valid URL: {err}"),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(BlockedHost {
            reason: format!("scheme {:?} is not allowed; use https", url.scheme()),
        });
    }
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match ip {
        Some(ip) if !allow_private && is_internal(ip) => Err(BlockedHost {
            reason: format!("host {ip} is an internal address"),
        }),
        _ => Ok(()),
    }
}

/// Addresses a provider's API never lives at: loopback, link-local (including the cloud
/// metadata address 169.254.169.254), private ranges, carrier-grade NAT, unspecified,
/// multicast and broadcast, and their IPv6 counterparts.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // 100.64.0.0/10, carrier-grade NAT: used for cluster-internal networks.
        || (a == 100 && (64..128).contains(&b))
        // 0.0.0.0/8 reaches the local host on Linux.
        || a == 0
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // fec0::/10, deprecated site-local, still routed internally by some networks.
        || (first & 0xffc0) == 0xfec0
}

/// A DNS resolver for provider requests that refuses names resolving only to internal
/// addresses and drops internal addresses from mixed answers.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| allow_private || !is_internal(addr.ip()))
                .collect();
            if usable.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = if resolved.is_empty() {
                    format!("{host} does not resolve").into()
                } else {
                    format!("{host} resolves only to internal addresses").into()
                };
                return Err(err);
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_literal_base_uri_host_is_allowed_by_default() {
        let hosts = AllowedHosts::new("https://api.stripe.com/v1", &[]).unwrap();
        assert!(
            hosts
                .check(&url("https://api.stripe.com/v1/account"), false)
                .is_ok()
        );
        let err = hosts
            .check(&url("https://evil.example/"), false)
            .unwrap_err();
        assert!(err.reason.contains("\"evil.example\""), "{}", err.reason);
        assert!(err.reason.contains("api.stripe.com"), "{}", err.reason);
    }

    #[test]
    fn a_templated_base_uri_allows_nothing_by_itself() {
        let hosts = AllowedHosts::new("https://{{ input.subdomain }}.zendesk.com", &[]).unwrap();
        assert!(
            hosts
                .check(&url("https://acme.zendesk.com/"), false)
                .is_err()
        );
        let hosts = AllowedHosts::new(
            "https://{{ input.subdomain }}.zendesk.com",
            &["*.zendesk.com".to_owned()],
        )
        .unwrap();
        assert!(
            hosts
                .check(&url("https://acme.zendesk.com/"), false)
                .is_ok()
        );
        assert!(
            hosts
                .check(&url("https://zendesk.com.evil.example/"), false)
                .is_err()
        );
    }

    #[test]
    fn internal_addresses_are_refused_unless_private_networks_are_allowed() {
        let hosts =
            AllowedHosts::new("http://127.0.0.1:8080", &["169.254.169.254".into()]).unwrap();
        for target in [
            "http://127.0.0.1:8080/x",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let err = hosts.check(&url(target), false).unwrap_err();
            assert!(
                err.reason.contains("internal address"),
                "{target}: {}",
                err.reason
            );
            assert!(hosts.check(&url(target), true).is_ok(), "{target}");
        }
    }

    #[test]
    fn endpoints_named_by_ip_literal_are_checked_too() {
        assert!(check_endpoint("http://169.254.169.254/token", false).is_err());
        assert!(check_endpoint("http://[::1]:8080/token", false).is_err());
        assert!(check_endpoint("file:///etc/passwd", true).is_err());
        assert!(check_endpoint("https://api.hubapi.com/oauth/v1/token", false).is_ok());
        assert!(check_endpoint("http://127.0.0.1:9/token", true).is_ok());
    }

    #[test]
    fn only_http_and_https_are_allowed() {
        let hosts = AllowedHosts::new("https://api.example.com", &["*".into()]).unwrap();
        assert!(hosts.check(&url("file:///etc/passwd"), true).is_err());
        assert!(
            hosts
                .check(&url("gopher://api.example.com/"), true)
                .is_err()
        );
    }

    #[test]
    fn internal_ranges_cover_the_usual_suspects() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_loopback() {
        use reqwest::dns::Resolve;
        let guarded = GuardedResolver {
            allow_private: false,
        };
        let err = guarded
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("internal addresses"), "{err}");
        let open = GuardedResolver {
            allow_private: true,
        };
        assert!(open.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
