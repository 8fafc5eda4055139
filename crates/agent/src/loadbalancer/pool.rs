//! Which server the agent's load balancer dials, as a pure state machine: the server
//! list, the one in use, and the ones that failed a dial or a health check.
//!
//! The rules, as k3s's agent load balancer: stay on the server in use while it is
//! healthy (connections and watches should not hop around); when it fails, move to the
//! next healthy server of the list; the `--server` address is the last resort and the
//! only choice until the cluster's own list is known; failed servers are still tried
//! when nothing healthy is left.

use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Pool {
    /// `HOST:PORT` of `--server`.
    default: String,
    /// The cluster's API servers (`/v1-k3rs/apiservers`), in the server's order.
    servers: Vec<String>,
    current: Option<String>,
    failed: BTreeSet<String>,
}

impl Pool {
    pub fn new(default: String, servers: Vec<String>) -> Pool {
        let mut pool = Pool {
            default,
            servers: Vec::new(),
            current: None,
            failed: BTreeSet::new(),
        };
        pool.set_servers(servers);
        pool
    }

    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Every address worth checking: the list, then the default.
    pub fn all(&self) -> Vec<String> {
        let mut all = self.servers.clone();
        if !all.contains(&self.default) {
            all.push(self.default.clone());
        }
        all
    }

    /// The order to dial in for a new connection.
    pub fn candidates(&self) -> Vec<String> {
        let all = self.all();
        let mut out: Vec<String> = Vec::with_capacity(all.len());
        if let Some(current) = self.current.as_ref().filter(|c| !self.failed.contains(*c)) {
            out.push(current.clone());
        }
        // Healthy ones first, in list order, then the failed ones as a last resort.
        for healthy in [true, false] {
            for address in &all {
                if self.failed.contains(address) != healthy && !out.contains(address) {
                    out.push(address.clone());
                }
            }
        }
        out
    }

    /// Replace the cluster's list (duplicates dropped). Returns true when the server in
    /// use is not in a non-empty new list (even if it is `--server`, which is only the
    /// last resort then): its connections should be closed so that clients reconnect.
    pub fn set_servers(&mut self, servers: Vec<String>) -> bool {
        let mut unique = Vec::with_capacity(servers.len());
        for server in servers {
            if !unique.contains(&server) {
                unique.push(server);
            }
        }
        self.servers = unique;
        let all = self.all();
        self.failed.retain(|s| all.contains(s));
        match &self.current {
            Some(current) if !self.servers.is_empty() && !self.servers.contains(current) => {
                self.current = None;
                true
            }
            _ => false,
        }
    }

    /// A connection to `address` worked: it is healthy and now the one in use. Returns
    /// true when that is a change of server.
    pub fn connected(&mut self, address: &str) -> bool {
        self.failed.remove(address);
        let changed = self.current.as_deref() != Some(address);
        self.current = Some(address.to_string());
        changed
    }

    /// A dial or health check of `address` failed. Returns true when it was the server in
    /// use, whose open connections should now be closed.
    pub fn failed(&mut self, address: &str) -> bool {
        self.failed.insert(address.to_string());
        if self.current.as_deref() == Some(address) {
            self.current = None;
            return true;
        }
        false
    }

    /// Whether a server other than `address` is not known to have failed: only then is
    /// it worth closing `address`'s connections (a slow but only server keeps them).
    pub fn has_alternative_to(&self, address: &str) -> bool {
        self.all()
            .iter()
            .any(|a| a != address && !self.failed.contains(a))
    }

    /// A health check of `address` passed.
    pub fn healthy(&mut self, address: &str) {
        self.failed.remove(address);
    }

    #[cfg(test)]
    pub fn is_failed(&self, address: &str) -> bool {
        self.failed.contains(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_only_until_the_list_is_known() {
        let pool = Pool::new("lb.example:6443".into(), vec![]);
        assert_eq!(pool.candidates(), s(&["lb.example:6443"]));
        let pool = Pool::new(
            "lb.example:6443".into(),
            s(&["10.0.0.1:6443", "10.0.0.2:6443"]),
        );
        assert_eq!(
            pool.candidates(),
            s(&["10.0.0.1:6443", "10.0.0.2:6443", "lb.example:6443"])
        );
    }

    #[test]
    fn sticks_to_the_current_server_and_moves_on_when_it_fails() {
        let mut pool = Pool::new("a:1".into(), s(&["a:1", "b:1", "c:1"]));
        assert!(pool.connected("b:1"));
        assert!(!pool.connected("b:1"));
        assert_eq!(pool.candidates(), s(&["b:1", "a:1", "c:1"]));
        assert!(pool.failed("b:1"), "the server in use failed");
        assert_eq!(pool.current(), None);
        assert_eq!(pool.candidates(), s(&["a:1", "c:1", "b:1"]));
        assert!(!pool.failed("c:1"));
        assert_eq!(pool.candidates(), s(&["a:1", "b:1", "c:1"]));
        pool.healthy("b:1");
        assert_eq!(pool.candidates(), s(&["a:1", "b:1", "c:1"]));
        assert!(pool.has_alternative_to("a:1"));
        // Everything failed: still try them all, in list order.
        pool.failed("a:1");
        pool.failed("b:1");
        assert_eq!(pool.candidates(), s(&["a:1", "b:1", "c:1"]));
        assert!(!pool.has_alternative_to("a:1"));
    }

    #[test]
    fn a_removed_current_server_is_dropped() {
        let mut pool = Pool::new("d:1".into(), s(&["a:1", "b:1"]));
        pool.connected("a:1");
        pool.failed("b:1");
        assert!(!pool.set_servers(s(&["a:1", "b:1", "a:1"])));
        assert_eq!(pool.servers(), s(&["a:1", "b:1"]));
        assert!(pool.set_servers(s(&["b:1", "c:1"])));
        assert_eq!(pool.current(), None);
        assert!(pool.is_failed("b:1"), "b stays failed while listed");
        assert_eq!(pool.candidates(), s(&["c:1", "d:1", "b:1"]));
    }
}
