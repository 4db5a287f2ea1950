//! Runs the behavioural suite against the in-memory engine.

use sluice_store::{store_suite, MemoryStore, Store};
use std::sync::Arc;

async fn make() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

store_suite!(make);
