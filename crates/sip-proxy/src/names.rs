//! The names next hops were found by: a TLS connection to such a hop asks for the name and
//! checks the server's certificate against it (RFC 5922 §4). A [`Destination`] carries the
//! name's key (it stays `Copy`), the IO layer the name from [`Names`].
//!
//! [`Destination`]: crate::Destination

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

/// A name a next hop was found by, as a key into [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameId(u64);

/// Most names kept; past it, half go (each lookup that leads to a name puts it back).
const MAX_NAMES: usize = 4096;

/// The names, by key: a keyed hash of the name, which no stranger can make collide.
#[derive(Debug, Default)]
pub(crate) struct Names {
    hasher: std::collections::hash_map::RandomState,
    table: Mutex<HashMap<u64, Arc<str>>>,
}

impl Names {
    /// The key of `name` (lower case), kept until [`Names::get`] needs it.
    pub(crate) fn intern(&self, name: &str) -> NameId {
        let id = self.hasher.hash_one(name);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.get(&id).is_some_and(|n| **n == *name) {
            return NameId(id);
        }
        if table.len() >= MAX_NAMES {
            let mut n = 0;
            table.retain(|_, _| {
                n += 1;
                n % 2 == 0
            });
        }
        table.insert(id, name.into());
        NameId(id)
    }

    /// The name of `id`; `None` once it was dropped to make room.
    pub(crate) fn get(&self, id: NameId) -> Option<Arc<str>> {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.get(&id.0).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_by_key_and_a_flood_is_bounded() {
        let names = Names::default();
        let a = names.intern("sip.example.com");
        assert_eq!(names.intern("sip.example.com"), a);
        assert_ne!(names.intern("sip.example.net"), a);
        assert_eq!(names.get(a).as_deref(), Some("sip.example.com"));
        for i in 0..3 * MAX_NAMES {
            names.intern(&format!("h{i}.example"));
        }
        assert!(names.table.lock().unwrap().len() <= MAX_NAMES);
        // Dropped or not, a lookup puts it back.
        let again = names.intern("sip.example.com");
        assert_eq!(names.get(again).as_deref(), Some("sip.example.com"));
    }
}
