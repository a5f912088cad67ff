//! What a process keeps of each event's configuration, for the paths that every visitor takes
//! and that need only settings an operator changes rarely: whether joins carry a challenge
//! ([`crate::challenge`]) and the waiting page's brand, language and target (the gateway's
//! page). Read from the store at most once per [`CONFIG_CACHE_MS`] per event and process, so
//! a page load or a join of an event without a challenge costs a map lookup, not a store
//! call; a change applies on every replica within that time, at once on the replica that made
//! it ([`EventConfigs::forget`]).

use crate::clock::Clock;
use crate::error::{QueueError, Result};
use crate::ids::EventId;
use crate::model::EventConfig;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How long a process trusts what it read of an event's configuration, in ms.
pub const CONFIG_CACHE_MS: u64 = 1000;
/// Events whose configuration is kept at once; past it the cache starts again empty (events
/// are created by operators, so this is only reached by a deployment with that many).
const CONFIG_CACHE_MAX: usize = 4096;

/// The events' configurations as this process last read them.
pub struct EventConfigs {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Event → (configuration, when read, Unix ms). Read by every page load and join, so a
    /// read lock: they do not queue behind one another here.
    cache: RwLock<HashMap<EventId, (Arc<EventConfig>, u64)>>,
}

redis_layer::debug_some!(EventConfigs, |c| cached = c.len());

impl EventConfigs {
    /// Configurations read from `store`, timed by `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The event's configuration, at most [`CONFIG_CACHE_MS`] old; `EventNotFound` when it
    /// does not exist (not kept: an event created on another replica is seen at once).
    pub async fn get(&self, event: &EventId) -> Result<Arc<EventConfig>> {
        let now = self.clock.now_ms();
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if let Some((config, at)) = cache.get(event) {
                if now >= *at && now - at < CONFIG_CACHE_MS {
                    return Ok(config.clone());
                }
            }
        }
        let info = self
            .store
            .info(event, now)
            .await?
            .ok_or_else(|| QueueError::EventNotFound(event.to_string()))?;
        let config = Arc::new(info.config);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CONFIG_CACHE_MAX && !cache.contains_key(event) {
            cache.clear();
        }
        cache.insert(event.clone(), (config.clone(), now));
        Ok(config)
    }

    /// Drops what this process kept of the event's configuration (after changing it here).
    pub fn forget(&self, event_id: &str) {
        if let Ok(event) = EventId::parse(event_id) {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            cache.remove(&event);
        }
    }

    fn len(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;

    const T0: u64 = 1_800_000_000_000;

    #[tokio::test]
    async fn a_configuration_is_read_again_after_a_second_or_when_forgotten() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(T0);
        let configs = EventConfigs::new(store.clone(), Arc::new(clock.clone()));
        let ev = EventId::parse("show").unwrap();
        // Not found is not kept: an event created since is seen at once.
        assert!(matches!(
            configs.get(&ev).await,
            Err(QueueError::EventNotFound(_))
        ));
        store
            .configure(&ev, &EventConfig::new(5, 10), T0)
            .await
            .unwrap();
        assert_eq!(configs.get(&ev).await.unwrap().admit_per_second, 5);

        // Changed elsewhere (another replica): seen once the second is over, not before.
        store
            .configure(&ev, &EventConfig::new(7, 10), T0)
            .await
            .unwrap();
        clock.advance_ms(CONFIG_CACHE_MS - 1);
        assert_eq!(configs.get(&ev).await.unwrap().admit_per_second, 5);
        clock.advance_ms(1);
        assert_eq!(configs.get(&ev).await.unwrap().admit_per_second, 7);

        // Changed here: forgotten, so seen at once.
        store
            .configure(&ev, &EventConfig::new(9, 10), T0)
            .await
            .unwrap();
        configs.forget("show");
        assert_eq!(configs.get(&ev).await.unwrap().admit_per_second, 9);
    }
}
