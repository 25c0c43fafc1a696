//! Where an endpoint may point. Moderators supply the URLs, so the service must not become a
//! way into its own network: `https` only and public addresses only, unless the operator allows
//! `http` or private destinations. Names are checked when they are resolved, on every request,
//! so a name that later resolves to a private address is refused then.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

/// What the operator allows endpoints to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// Loopback, private, link-local and other non-public addresses
    /// (`REPLYGUARD_WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Plain `http://` (`REPLYGUARD_WEBHOOK_ALLOW_HTTP`).
    pub allow_http: bool,
}

/// Why an endpoint's URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("is not a URL: {0}")]
    NotUrl(String),
    #[error(
        "must be https:// (plain http:// only where the operator sets REPLYGUARD_WEBHOOK_ALLOW_HTTP)"
    )]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error(
        "names {0}, which is not a public address (REPLYGUARD_WEBHOOK_ALLOW_PRIVATE=true allows it)"
    )]
    Private(IpAddr),
    #[error("is longer than 2048 characters")]
    TooLong,
}

impl Targets {
    /// The URL an endpoint is added with, checked as far as it can be before it is resolved.
    pub fn check(&self, text: &str) -> Result<Url, TargetError> {
        if text.len() > 2048 {
            return Err(TargetError::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(|err| TargetError::NotUrl(err.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(TargetError::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        match url.host() {
            None => return Err(TargetError::NotUrl("no host".to_owned())),
            Some(url::Host::Ipv4(ip)) => self.address(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.address(IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
        }
        Ok(url)
    }

    /// Whether requests may go to `ip`.
    pub fn address(&self, ip: IpAddr) -> Result<(), TargetError> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(TargetError::Private(ip))
        }
    }

    /// The resolver the worker's client uses: it drops the addresses these targets refuse,
    /// and fails a name that leaves none.
    pub fn resolver(self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { targets: self })
    }
}

/// Whether `ip` is an address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                // 100.64.0.0/10, carrier-grade NAT; 0.0.0.0/8; 240.0.0.0/4.
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, 2001:db8::/32 documentation.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// Resolves names as the system does, keeping only the addresses [`Targets`] allow.
#[derive(Debug)]
pub struct GuardedResolver {
    targets: Targets,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let targets = self.targets;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| targets.address(addr.ip()).is_ok())
                .collect();
            match (allowed.is_empty(), found.first()) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as Addrs),
                (true, Some(refused)) => Err(TargetError::Private(refused.ip()).into()),
                (true, None) => Err(format!("{} has no address", name.as_str()).into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_targets_pass_by_default() {
        let strict = Targets::default();
        assert!(strict.check("https://hooks.example.com/replyguard").is_ok());
        assert_eq!(
            strict.check("http://hooks.example.com/"),
            Err(TargetError::NotHttps)
        );
        for private in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://192.168.0.9/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://100.64.0.1/",
        ] {
            assert!(
                matches!(strict.check(private), Err(TargetError::Private(_))),
                "{private}"
            );
        }
        assert_eq!(
            strict.check("https://user:pass@hooks.example.com/"),
            Err(TargetError::Credentials)
        );
        let open = Targets {
            allow_private: true,
            allow_http: true,
        };
        assert!(open.check("http://127.0.0.1:8080/hook").is_ok());
    }
}
