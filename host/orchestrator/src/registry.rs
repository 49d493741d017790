//! The capabilities an orchestrator offers: external HTTP workers that registered themselves
//! and WebAssembly plugins of this node, each with a price and exact capacity.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::backend::{Backend, PluginRef, Worker};
use crate::capacity::{Capacity, CapacityError, Reservation};

/// The body of `POST /capability/register`, as go-livepeer and pytrickle send it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkerRegistration {
    /// The capability's name.
    #[serde(default)]
    pub name: String,
    /// What it does, for people.
    #[serde(default)]
    pub description: String,
    /// Where the worker is reached (an absolute http(s) URL).
    #[serde(default)]
    pub url: String,
    /// How many jobs it runs at once.
    #[serde(default)]
    pub capacity: i64,
    /// Its price: `price_per_unit / price_scaling` per second of compute.
    #[serde(default)]
    pub price_per_unit: i64,
    /// The divisor of `price_per_unit`.
    #[serde(default)]
    pub price_scaling: i64,
    /// The unit of `price_per_unit`: `""` or `"wei"`, or `"eth"`.
    #[serde(default)]
    pub currency: String,
    /// The token the worker expects from this node (`Authorization: Bearer`).
    #[serde(default)]
    pub token: String,
}

/// Price in wei per second of compute: `per_unit / scaling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Wei per `scaling` seconds.
    pub per_unit: u128,
    /// The divisor of `per_unit` (at least 1).
    pub scaling: u128,
}

impl Price {
    /// Nothing to pay.
    pub const FREE: Price = Price { per_unit: 0, scaling: 1 };
}

/// One capability.
#[derive(Debug)]
pub struct Capability {
    /// Its name, as jobs name it.
    pub name: String,
    /// What it does, for people.
    pub description: String,
    /// Where its work is done.
    pub backend: Backend,
    /// What a second of it costs.
    pub price: Price,
    /// Its slots.
    pub capacity: Arc<Capacity>,
}

/// A slot taken on a capability.
#[derive(Debug)]
pub struct Reserved {
    /// The capability, as registered when the slot was taken.
    pub capability: Arc<Capability>,
    /// The slot, freed when dropped.
    pub reservation: Reservation,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // The messages say it.
pub enum RegisterError {
    #[error("name must be 1-128 printable characters without '/'")]
    Name,
    #[error("url must be an absolute http:// or https:// URL")]
    Url,
    #[error("capacity must be between 0 and 100000")]
    Capacity,
    #[error("price_per_unit and price_scaling must not be negative")]
    Price,
    #[error("currency {0:?} is not supported (use \"\", \"wei\" or \"eth\")")]
    Currency(String),
    #[error("capability {0:?} is served by a plugin of this node")]
    HeldByPlugin(String),
    #[error("capability {0:?} is held by another worker (a different token)")]
    HeldByWorker(String),
}

impl RegisterError {
    /// Whether the name is taken (409), rather than the registration malformed (400).
    pub fn is_conflict(&self) -> bool {
        matches!(self, RegisterError::HeldByPlugin(_) | RegisterError::HeldByWorker(_))
    }
}

/// Why a reservation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// No capability of that name.
    #[error("capability {0:?} is not offered here")]
    Unknown(String),
    /// Every slot is taken.
    #[error(transparent)]
    Full(#[from] CapacityError),
}

/// All capabilities of a node.
#[derive(Debug, Default)]
pub struct Registry {
    map: RwLock<HashMap<String, Arc<Capability>>>,
    /// The operator's prices, which win over what workers and plugins announce.
    prices: RwLock<HashMap<String, Price>>,
    /// The operator's capacities for plugins, which win over their hints.
    capacities: RwLock<HashMap<String, u32>>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_graphic() && c != '/')
}

/// The slots of `name`: those of the capability it replaces (running jobs keep theirs) with the
/// new limit, or fresh ones.
fn slots(map: &HashMap<String, Arc<Capability>>, name: &str, limit: u32) -> Arc<Capacity> {
    match map.get(name) {
        Some(old) => {
            old.capacity.set_limit(limit);
            old.capacity.clone()
        }
        None => Capacity::new(limit),
    }
}

impl Registry {
    /// No capabilities.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the operator's price for a capability (now and for later registrations).
    pub fn set_price(&self, name: &str, price: Price) {
        self.prices.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), price);
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = map.get(name).cloned() {
            map.insert(name.to_string(), Arc::new(Capability { price, ..clone_capability(&old) }));
        }
    }

    /// Sets the operator's capacity for a plugin capability (applied when plugins are offered).
    pub fn set_plugin_capacity(&self, name: &str, capacity: u32) {
        self.capacities.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), capacity);
    }

    fn price_for(&self, name: &str, announced: Price) -> Price {
        self.prices.read().unwrap_or_else(|e| e.into_inner()).get(name).copied().unwrap_or(announced)
    }

    /// Registers (or updates) an external worker. A re-registration keeps the slots in use by
    /// running jobs: only the limit, URL, token and price change.
    pub fn register_worker(&self, reg: &WorkerRegistration) -> Result<Arc<Capability>, RegisterError> {
        if !valid_name(&reg.name) {
            return Err(RegisterError::Name);
        }
        let url = reg.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            return Err(RegisterError::Url);
        }
        let limit = u32::try_from(reg.capacity).ok().filter(|c| *c <= 100_000).ok_or(RegisterError::Capacity)?;
        let (Ok(per_unit), Ok(scaling)) = (u128::try_from(reg.price_per_unit), u128::try_from(reg.price_scaling))
        else {
            return Err(RegisterError::Price);
        };
        let per_unit = match reg.currency.to_ascii_lowercase().as_str() {
            "" | "wei" => per_unit,
            "eth" => per_unit * 1_000_000_000_000_000_000,
            other => return Err(RegisterError::Currency(other.to_string())),
        };
        let token = (!reg.token.is_empty()).then(|| reg.token.clone());
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        // A name is held by whoever has it: a plugin of the operator's, or the worker that
        // registered it first (a re-registration must carry the same token).
        match map.get(&reg.name).map(|old| &old.backend) {
            Some(Backend::Plugin(_)) => return Err(RegisterError::HeldByPlugin(reg.name.clone())),
            Some(Backend::Worker(held)) if !held.has_token(token.as_deref()) => {
                return Err(RegisterError::HeldByWorker(reg.name.clone()));
            }
            _ => {}
        }
        let capacity = slots(&map, &reg.name, limit);
        let cap = Arc::new(Capability {
            name: reg.name.clone(),
            description: reg.description.clone(),
            backend: Backend::Worker(Worker::new(url, token)),
            price: self.price_for(&reg.name, Price { per_unit, scaling: scaling.max(1) }),
            capacity,
        });
        map.insert(reg.name.clone(), cap.clone());
        Ok(cap)
    }

    /// Offers every plugin loaded in `runtime` as a capability, with the price and capacity its
    /// `describe()` gives (`default_capacity` when it gives no hint). Slots in use are kept when
    /// a plugin is offered again (after a reload).
    pub fn register_plugins(&self, runtime: &Arc<byoc_runtime::Runtime>, default_capacity: u32) -> Vec<String> {
        let mut names = Vec::new();
        for plugin in runtime.plugins() {
            let info = plugin.describe();
            let configured = self.capacities.read().unwrap_or_else(|e| e.into_inner()).get(&info.name).copied();
            let limit = configured.unwrap_or(if info.capacity == 0 { default_capacity } else { info.capacity });
            let price = self.price_for(
                &info.name,
                Price { per_unit: u128::from(info.price.per_unit), scaling: u128::from(info.price.scaling.max(1)) },
            );
            let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
            let capacity = slots(&map, &info.name, limit);
            map.insert(
                info.name.clone(),
                Arc::new(Capability {
                    name: info.name.clone(),
                    description: info.description.clone(),
                    backend: Backend::Plugin(PluginRef::new(runtime, &info.name)),
                    price,
                    capacity,
                }),
            );
            names.push(info.name.clone());
        }
        names
    }

    /// Removes an external worker's capability (a plugin's is never removed this way). Running
    /// jobs keep their reservations until they end.
    pub fn unregister(&self, name: &str) -> Result<bool, RegisterError> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        match map.get(name).map(|c| &c.backend) {
            Some(Backend::Plugin(_)) => Err(RegisterError::HeldByPlugin(name.to_string())),
            Some(Backend::Worker(_)) => Ok(map.remove(name).is_some()),
            None => Ok(false),
        }
    }

    /// Removes `cap` if it is still the registered one (a worker found unreachable or refusing
    /// our token), not a newer registration under the same name.
    pub fn forget(&self, cap: &Arc<Capability>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.get(&cap.name).is_some_and(|now| Arc::ptr_eq(now, cap)) {
            map.remove(&cap.name);
        }
    }

    /// The capability `name`, if offered here.
    pub fn get(&self, name: &str) -> Option<Arc<Capability>> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Free slots of a capability (0 if unknown).
    pub fn available(&self, name: &str) -> u32 {
        self.get(name).map_or(0, |c| c.capacity.available())
    }

    /// Takes a slot of a capability.
    pub fn reserve(&self, name: &str) -> Result<Reserved, ReserveError> {
        let capability = self.get(name).ok_or_else(|| ReserveError::Unknown(name.to_string()))?;
        let reservation = capability.capacity.reserve()?;
        Ok(Reserved { capability, reservation })
    }

    /// Names of all capabilities.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.map.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        v.sort();
        v
    }
}

fn clone_capability(c: &Capability) -> Capability {
    Capability {
        name: c.name.clone(),
        description: c.description.clone(),
        backend: c.backend.clone(),
        price: c.price,
        capacity: c.capacity.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, capacity: i64) -> WorkerRegistration {
        WorkerRegistration { name: name.into(), url: "http://127.0.0.1:9/".into(), capacity, ..Default::default() }
    }

    #[test]
    fn reregistration_keeps_slots_in_use() {
        let r = Registry::new();
        r.register_worker(&reg("a", 2)).unwrap();
        let held = r.reserve("a").unwrap();
        r.register_worker(&reg("a", 2)).unwrap();
        assert_eq!(r.available("a"), 1);
        let _second = r.reserve("a").unwrap();
        assert!(matches!(r.reserve("a"), Err(ReserveError::Full(_))));
        drop(held);
        assert_eq!(r.available("a"), 1);
        assert!(r.unregister("a").unwrap());
        assert!(matches!(r.reserve("a"), Err(ReserveError::Unknown(_))));
        assert_eq!(r.available("a"), 0);
    }

    #[test]
    fn operator_prices_win() {
        let r = Registry::new();
        let mut announced = reg("a", 1);
        announced.price_per_unit = 5;
        r.register_worker(&announced).unwrap();
        r.set_price("a", Price { per_unit: 7, scaling: 1 });
        assert_eq!(r.get("a").unwrap().price.per_unit, 7);
        r.register_worker(&announced).unwrap();
        assert_eq!(r.get("a").unwrap().price.per_unit, 7, "a re-registration does not undo the operator's price");
    }

    #[test]
    fn validation() {
        let r = Registry::new();
        assert_eq!(r.register_worker(&reg("", 1)).err(), Some(RegisterError::Name));
        assert_eq!(r.register_worker(&reg("a/b", 1)).err(), Some(RegisterError::Name));
        assert_eq!(r.register_worker(&reg("a", -1)).err(), Some(RegisterError::Capacity));
        let mut bad_url = reg("a", 1);
        bad_url.url = "ftp://x".into();
        assert_eq!(r.register_worker(&bad_url).err(), Some(RegisterError::Url));
        let mut usd = reg("a", 1);
        usd.currency = "USD".into();
        assert_eq!(r.register_worker(&usd).err(), Some(RegisterError::Currency("usd".into())));
        let mut eth = reg("a", 1);
        eth.currency = "eth".into();
        eth.price_per_unit = 2;
        assert_eq!(r.register_worker(&eth).unwrap().price.per_unit, 2_000_000_000_000_000_000);
        assert_eq!(r.names(), vec!["a".to_string()]);
    }
}
