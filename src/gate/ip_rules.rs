//! `GATEWAY_ALLOW_IPS` / `GATEWAY_DENY_IPS`: which client addresses may talk to the gateway at
//! all. Checked first, before authentication, on every route; deny wins over allow; an empty
//! allow list allows everyone not denied.

use std::net::IpAddr;

use ipnet::IpNet;

use super::client::in_any;

/// The two lists.
#[derive(Clone, Debug, Default)]
pub struct IpRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpRules {
    /// Rules from the configured lists.
    pub fn new(allow: &[IpNet], deny: &[IpNet]) -> Self {
        Self {
            allow: allow.to_vec(),
            deny: deny.to_vec(),
        }
    }

    /// Whether there is any rule to check.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `client` may be served.
    pub fn admits(&self, client: IpAddr) -> bool {
        !in_any(&self.deny, client) && (self.allow.is_empty() || in_any(&self.allow, client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_and_an_empty_allow_list_allows() {
        let net = |s: &str| s.parse::<IpNet>().ok().into_iter().collect::<Vec<_>>();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let rules = IpRules::new(&net("10.0.0.0/8"), &net("10.6.0.0/16"));
        assert!(rules.admits(ip("10.1.2.3")));
        assert!(!rules.admits(ip("10.6.2.3")));
        assert!(!rules.admits(ip("192.0.2.1")));
        let deny_only = IpRules::new(&[], &net("192.0.2.0/24"));
        assert!(deny_only.admits(ip("198.51.100.1")));
        assert!(!deny_only.admits(ip("192.0.2.1")));
    }
}
