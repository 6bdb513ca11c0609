//! Where the per-customer data keys live: [`KeyStore`], with a JetStream KV
//! implementation ([`JetStreamKeyStore`], bucket `<stream>_KEYS`) and an in-memory one
//! ([`MemoryKeyStore`], tests and embedded mode).
//!
//! The store only ever holds **wrapped** data keys ([`WrappedDek`]): the data key
//! encrypted under the master key, which never leaves the engine (`loan_engine::vault`).
//! What a key store guarantees:
//!
//! * **Create once.** [`KeyStore::create`] stores a customer's key only if the customer has
//!   none; when another writer was first it returns that writer's key, so every instance
//!   encrypts a customer's data under the same key.
//! * **Destroy for good.** [`KeyStore::destroy`] removes every stored copy of the key
//!   (JetStream: purges the key's history, leaving only a purge marker) and leaves a
//!   tombstone, so the key is reported [`KeyEntry::Destroyed`] and is never created again
//!   for that customer: crypto-shredding cannot be undone by a later write.

use std::collections::HashMap;
use std::sync::Mutex;

use async_nats::jetstream::{self, kv, stream};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreError;

/// A data key encrypted ("wrapped") under the master key, as the key store holds it.
/// Every field is public information; without the master key it reveals nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedDek {
    /// Id of the data key, written next to every value it encrypts (`"key"`).
    pub key_id: String,
    /// Wrapping algorithm, e.g. `aes-256-gcm/v1`.
    pub alg: String,
    /// Fingerprint of the master key that wrapped it (refuses a wrong master key clearly).
    pub kek_id: String,
    /// Base64 nonce of the wrapping.
    pub nonce: String,
    /// Base64 ciphertext and tag of the data key.
    pub wrapped: String,
}

/// What the key store knows about a customer's data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEntry {
    Active(WrappedDek),
    /// The key was destroyed: the customer was erased.
    Destroyed,
}

/// Storage of the per-customer data keys. Object-safe, so the engine holds an
/// `Arc<dyn KeyStore>` whatever the backend.
pub trait KeyStore: Send + Sync + 'static {
    /// The customer's key, `Destroyed`, or `None` if the customer never had one.
    fn get(&self, customer: Uuid) -> BoxFuture<'_, Result<Option<KeyEntry>, StoreError>>;

    /// Stores `key` unless the customer already has a key (or had one destroyed); returns
    /// the entry in force afterwards: `Active(key)`, another writer's `Active`, or
    /// `Destroyed`.
    fn create<'a>(
        &'a self,
        customer: Uuid,
        key: &'a WrappedDek,
    ) -> BoxFuture<'a, Result<KeyEntry, StoreError>>;

    /// Destroys the customer's key (idempotent; also when it never had one): afterwards
    /// `get` answers `Destroyed` and `create` never stores a key for it again.
    fn destroy(&self, customer: Uuid) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// In-memory [`KeyStore`], for tests and the embedded mode. Keys live as long as the value.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<Uuid, KeyEntry>>,
}

impl MemoryKeyStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, KeyEntry>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyStore for MemoryKeyStore {
    fn get(&self, customer: Uuid) -> BoxFuture<'_, Result<Option<KeyEntry>, StoreError>> {
        let entry = self.lock().get(&customer).cloned();
        Box::pin(async move { Ok(entry) })
    }

    fn create<'a>(
        &'a self,
        customer: Uuid,
        key: &'a WrappedDek,
    ) -> BoxFuture<'a, Result<KeyEntry, StoreError>> {
        let entry = self
            .lock()
            .entry(customer)
            .or_insert_with(|| KeyEntry::Active(key.clone()))
            .clone();
        Box::pin(async move { Ok(entry) })
    }

    fn destroy(&self, customer: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        self.lock().insert(customer, KeyEntry::Destroyed);
        Box::pin(async move { Ok(()) })
    }
}

/// How the key bucket is set up.
#[derive(Debug, Clone)]
pub struct KeyStoreConfig {
    /// Bucket name, `<stream>_KEYS` by convention.
    pub bucket: String,
    /// As the event stream: 1 on a development box, 3 in production.
    pub replicas: usize,
}

impl KeyStoreConfig {
    /// The key bucket that goes with the event stream `stream`.
    pub fn for_stream(stream: &str, replicas: usize) -> Self {
        KeyStoreConfig {
            bucket: format!("{stream}_KEYS"),
            replicas,
        }
    }
}

/// [`KeyStore`] on a JetStream key-value bucket: one key per customer
/// (`customer.<uuid>`), whose value is the JSON of its [`WrappedDek`]. Creation is a
/// write expecting revision 0 (the key's subject holds no message at all, not even a
/// purge marker), so a destroyed key is never revived; destruction is a KV purge, which
/// removes every earlier revision and leaves the purge marker as the tombstone.
#[derive(Clone)]
pub struct JetStreamKeyStore {
    bucket: kv::Store,
}

impl JetStreamKeyStore {
    /// Opens (creating if needed) the key bucket.
    pub async fn open(
        client: async_nats::Client,
        config: KeyStoreConfig,
    ) -> Result<Self, StoreError> {
        let context = jetstream::new(client);
        let bucket = match context.get_key_value(&config.bucket).await {
            Ok(bucket) => bucket,
            Err(_) => context
                .create_key_value(kv::Config {
                    bucket: config.bucket.clone(),
                    description: "Loan engine: per-customer data keys, wrapped by the master key. A purge marker means the customer was erased.".into(),
                    history: 1,
                    max_value_size: 4096,
                    storage: stream::StorageType::File,
                    num_replicas: config.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    StoreError::unavailable(format!("creating bucket {}", config.bucket), e)
                })?,
        };
        Ok(JetStreamKeyStore { bucket })
    }

    fn key(customer: Uuid) -> String {
        format!("customer.{customer}")
    }

    async fn entry(&self, customer: Uuid) -> Result<Option<KeyEntry>, StoreError> {
        let entry = self
            .bucket
            .entry(Self::key(customer))
            .await
            .map_err(|e| StoreError::unavailable("reading a data key", e))?;
        match entry {
            None => Ok(None),
            Some(entry) => match entry.operation {
                kv::Operation::Put => serde_json::from_slice(&entry.value)
                    .map(|key| Some(KeyEntry::Active(key)))
                    .map_err(|e| StoreError::Corrupt {
                        position: entry.revision,
                        reason: format!("wrapped data key of customer {customer}: {e}"),
                    }),
                kv::Operation::Delete | kv::Operation::Purge => Ok(Some(KeyEntry::Destroyed)),
            },
        }
    }
}

impl KeyStore for JetStreamKeyStore {
    fn get(&self, customer: Uuid) -> BoxFuture<'_, Result<Option<KeyEntry>, StoreError>> {
        Box::pin(self.entry(customer))
    }

    fn create<'a>(
        &'a self,
        customer: Uuid,
        key: &'a WrappedDek,
    ) -> BoxFuture<'a, Result<KeyEntry, StoreError>> {
        Box::pin(async move {
            let value = serde_json::to_vec(key).unwrap_or_default();
            match self
                .bucket
                .update(Self::key(customer), value.into(), 0)
                .await
            {
                Ok(_) => Ok(KeyEntry::Active(key.clone())),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // Another writer was first, or the key was destroyed: whatever is there wins.
                    self.entry(customer).await?.ok_or_else(|| StoreError::Unavailable {
                        context: format!(
                            "the data key of customer {customer} neither could be created nor exists"
                        ),
                        source: None,
                    })
                }
                Err(error) => Err(StoreError::unavailable("creating a data key", error)),
            }
        })
    }

    fn destroy(&self, customer: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.bucket
                .purge(Self::key(customer))
                .await
                .map_err(|e| StoreError::unavailable("destroying a data key", e))
        })
    }
}
