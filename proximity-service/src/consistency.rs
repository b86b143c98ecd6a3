//! Read-your-writes bookkeeping: the WAL position each client's last write
//! reached, so its next read goes to a database that has replayed it.
//!
//! A client is known by its API key (writes always carry one) and by its
//! address; a write records its position under both, and a read takes the
//! latest position of whichever it matches. Clients may also echo the
//! `X-Consistency-Token` header a write returned (needed when they read from
//! another address or through another instance). Entries expire after
//! [`REMEMBER_FOR`]; by then every healthy replica has long replayed them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::Lsn;

/// The response/request header carrying a write's WAL position.
pub const TOKEN_HEADER: &str = "x-consistency-token";
/// How long a client's last write position is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(60);
const PRUNE_ABOVE: usize = 100_000;

/// Who a position belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    Key(String),
    Addr(std::net::IpAddr),
}

#[derive(Debug, Default)]
pub struct Consistency {
    last: Mutex<HashMap<Client, (Lsn, Instant)>>,
}

impl Consistency {
    /// Records that `clients` wrote up to `lsn`.
    pub fn record(&self, clients: &[Client], lsn: Lsn) {
        let now = Instant::now();
        let mut last = self.last.lock().expect("consistency lock");
        if last.len() > PRUNE_ABOVE {
            last.retain(|_, (_, at)| now.duration_since(*at) < REMEMBER_FOR);
        }
        for c in clients {
            let entry = last.entry(c.clone()).or_insert((lsn, now));
            if lsn >= entry.0 {
                *entry = (lsn, now);
            }
        }
    }

    /// The position a read by `clients` must see (the newest of theirs).
    pub fn required(&self, clients: &[Client]) -> Option<Lsn> {
        let last = self.last.lock().expect("consistency lock");
        if last.is_empty() {
            return None;
        }
        let now = Instant::now();
        clients
            .iter()
            .filter_map(|c| last.get(c))
            .filter(|(_, at)| now.duration_since(*at) < REMEMBER_FOR)
            .map(|(lsn, _)| *lsn)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_position_of_any_matching_client_wins() {
        let c = Consistency::default();
        let key = Client::Key("k".into());
        let addr = Client::Addr("10.0.0.1".parse().unwrap());
        assert_eq!(c.required(std::slice::from_ref(&key)), None);
        c.record(&[key.clone(), addr.clone()], Lsn(10));
        c.record(std::slice::from_ref(&key), Lsn(20));
        c.record(std::slice::from_ref(&key), Lsn(15));
        assert_eq!(c.required(std::slice::from_ref(&key)), Some(Lsn(20)));
        assert_eq!(c.required(std::slice::from_ref(&addr)), Some(Lsn(10)));
        assert_eq!(
            c.required(&[Client::Addr("10.0.0.2".parse().unwrap())]),
            None
        );
    }
}
