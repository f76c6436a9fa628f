//! `GATEWAY_MAX_CONN_PER_IP`: open connections per peer address, like nginx's `limit_conn`. A
//! connection over the cap is closed as soon as it is accepted, before anything is read. The
//! peer is the socket's (a proxy in front counts as one address: set the cap with that in mind).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections by address.
#[derive(Debug, Default)]
pub struct ConnectionCap {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionSlot {
    cap: Arc<ConnectionCap>,
    ip: IpAddr,
}

impl ConnectionCap {
    /// At most `max` open connections per address (0 = no cap).
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection from `ip`, or `None` when it has `max` open already.
    /// With no cap, no bookkeeping at all.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Option<ConnectionSlot>> {
        if self.max == 0 {
            return Some(None);
        }
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Some(ConnectionSlot {
            cap: Arc::clone(self),
            ip,
        }))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.cap.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_per_address_and_frees_on_drop() {
        let cap = ConnectionCap::new(2);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let first = cap.admit(a).flatten();
        let second = cap.admit(a).flatten();
        assert!(first.is_some() && second.is_some());
        assert!(cap.admit(a).is_none(), "a third from the same address");
        assert!(
            cap.admit(b).flatten().is_some(),
            "another address has its own count"
        );
        drop(first);
        assert!(cap.admit(a).flatten().is_some(), "a place was freed");
        assert!(
            ConnectionCap::new(0)
                .admit(a)
                .is_some_and(|slot| slot.is_none())
        );
    }
}
