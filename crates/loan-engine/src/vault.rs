//! Encryption of sensitive fields at rest, blind indexes, and crypto-shredding.
//!
//! Key hierarchy (docs/security.md):
//!
//! * the **master key** ([`MasterKey`], 32 bytes from configuration) never leaves this
//!   process and is never stored. Three keys are derived from it, each by
//!   HKDF-Expand-SHA256 with its own label: the **wrapping key** (the KEK: encrypts data
//!   keys), the **index key** ([`IndexKey`]: blind indexes) and the **digest key** (keyed
//!   request digests for idempotency, so a stored digest cannot be brute-forced back to
//!   a phone number);
//! * one **data key** (DEK, [`DataKey`]) per customer, 32 random bytes, stored only
//!   wrapped (AES-256-GCM under the KEK, bound to the customer id and key id) in a
//!   [`KeyStore`]; destroying it makes every value it encrypted unreadable for good.
//!
//! A sensitive value is stored as [`EncryptedField`]
//! `{"enc": "aes-256-gcm/v1", "key": "<data key id>", "nonce": "<b64>", "ct": "<b64>"}`:
//! AES-256-GCM under the customer's data key with a random 96-bit nonce and, as
//! associated data, the algorithm, the key id, the event id and the field name, so a
//! ciphertext moved to another event or another field does not decrypt.
//!
//! Key material lives in [`Zeroizing`] buffers (wiped on drop) and never prints:
//! `Debug` of every key type is masked.

use std::fmt;
use std::sync::Arc;

// Enables the `zeroize` feature of the AES implementation (round keys wiped on drop).
use aes as _;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use loan_store::StoreError;
use loan_store::keys::{KeyEntry, KeyStore, MemoryKeyStore, WrappedDek};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The encryption of sensitive fields (and of wrapped data keys).
pub const FIELD_ALG: &str = "aes-256-gcm/v1";
/// Length of every key, in bytes.
pub const KEY_LEN: usize = 32;

const LABEL_WRAP: &str = "loan-engine/v1/dek-wrapping-key";
const LABEL_INDEX: &str = "loan-engine/v1/blind-index-key";
const LABEL_DIGEST: &str = "loan-engine/v1/request-digest-key";
const LABEL_KEK_ID: &str = "loan-engine/v1/kek-id";

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; ours are always 32 bytes.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HKDF-Expand-SHA256 of one block: `HMAC(master, label || 0x01)`. The master key is
/// uniformly random, so it serves as the pseudorandom key directly.
fn derive(master: &[u8; KEY_LEN], label: &str) -> Zeroizing<[u8; KEY_LEN]> {
    Zeroizing::new(hmac(master, &[label.as_bytes(), &[1]]))
}

fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0u8; N]);
    OsRng.fill_bytes(&mut bytes[..]);
    bytes
}

// ---------------------------------------------------------------------------------------
// Master key
// ---------------------------------------------------------------------------------------

/// The master key (KEK root) from configuration: 32 bytes, given as 64 hex characters or
/// as base64. Wiped from memory on drop; `Debug` prints `MasterKey(***)`; there is no
/// `Display` and no way to read it back.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

/// A master key that is not 32 bytes of hex or base64. Never repeats the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeyError;

impl fmt::Display for MasterKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the master key must be 32 bytes, given as 64 hex characters or as base64")
    }
}

impl std::error::Error for MasterKeyError {}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        MasterKey(Zeroizing::new(bytes))
    }

    /// A fresh random key (tests, the embedded mode, `loan` tooling that prints one).
    pub fn generate() -> Self {
        MasterKey(random_bytes())
    }

    /// Parses 64 hex characters or standard base64 (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if text.len() == 2 * KEY_LEN && hex::decode_to_slice(text, &mut key[..]).is_ok() {
            return Ok(MasterKey(key));
        }
        let decoded = Zeroizing::new(B64.decode(text).map_err(|_| MasterKeyError)?);
        if decoded.len() != KEY_LEN {
            return Err(MasterKeyError);
        }
        key.copy_from_slice(&decoded);
        Ok(MasterKey(key))
    }

    /// Reads a key file holding the key as hex or base64 (e.g. a mounted secret). Errors
    /// name the file, never its content.
    pub fn read_file(path: &std::path::Path) -> std::io::Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path)?);
        MasterKey::parse(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Generates a fresh key and writes it, as 64 hex characters, to a NEW file at `path`
    /// (never overwriting one; owner-only permissions on Unix): the embedded mode's and
    /// the demo's key, readable later with [`MasterKey::read_file`].
    pub fn create_file(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::Write as _;
        let key = MasterKey::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        let text = Zeroizing::new(hex::encode(&key.0[..]));
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        Ok(key)
    }

    /// Short public fingerprint, recorded with every wrapped data key so that a wrong
    /// master key is reported as such instead of as corrupt data.
    pub fn fingerprint(&self) -> String {
        hex::encode(&hmac(&self.0[..], &[LABEL_KEK_ID.as_bytes()])[..8])
    }
}

impl std::str::FromStr for MasterKey {
    type Err = MasterKeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MasterKey::parse(text)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

// ---------------------------------------------------------------------------------------
// Blind index
// ---------------------------------------------------------------------------------------

/// The key of the blind indexes, derived from the master key. `Debug` is masked.
#[derive(Clone)]
pub struct IndexKey(Zeroizing<[u8; KEY_LEN]>);

impl IndexKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        IndexKey(Zeroizing::new(bytes))
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(***)")
    }
}

/// The blind index of a normalised sensitive value (`NationalId::expose`,
/// `PhoneNumber::expose`): lowercase hex of HMAC-SHA256 under the index key. Equal
/// values give equal indexes, so a customer can be looked up by national ID or phone
/// without either being stored in clear; without the key the index reveals nothing.
pub fn blind_index(key: &IndexKey, normalized_value: &str) -> String {
    hex::encode(hmac(&key.0[..], &[normalized_value.as_bytes()]))
}

// ---------------------------------------------------------------------------------------
// Data keys and encrypted fields
// ---------------------------------------------------------------------------------------

/// A sensitive value as stored: AES-256-GCM ciphertext under a customer's data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedField {
    /// Algorithm and format version: [`FIELD_ALG`].
    pub enc: String,
    /// Id of the data key.
    pub key: String,
    /// Base64 of the 96-bit nonce.
    pub nonce: String,
    /// Base64 of the ciphertext followed by the 128-bit tag.
    pub ct: String,
}

impl EncryptedField {
    /// Whether a stored JSON value is an encrypted field (rather than a clear value
    /// written before encryption, or `null`).
    pub fn is_encrypted(value: &serde_json::Value) -> bool {
        value.as_object().is_some_and(|o| o.contains_key("enc"))
    }
}

/// Why a value could not be encrypted or decrypted. Says nothing about the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// Unknown algorithm or undecodable nonce / ciphertext.
    Format(&'static str),
    /// The authentication failed: wrong key, wrong associated data (event id, field),
    /// or tampered nonce or ciphertext.
    Authentication,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::Format(what) => write!(f, "malformed encrypted value: {what}"),
            CryptoError::Authentication => {
                f.write_str("encrypted value does not authenticate (wrong key, moved, or tampered)")
            }
        }
    }
}

impl std::error::Error for CryptoError {}

/// A customer's data key, unwrapped. `Debug` shows only its id.
pub struct DataKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({}, ***)", self.id)
    }
}

fn field_aad(key_id: &str, event_id: Uuid, field: &str) -> String {
    format!("{FIELD_ALG}|{key_id}|{event_id}|{field}")
}

fn seal_bytes(key: &[u8; KEY_LEN], aad: &[u8], clear: &[u8]) -> (String, String) {
    let cipher = Aes256Gcm::new(key.into());
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    // Encryption fails only for inputs beyond GCM's 64 GiB limit.
    let ct = cipher
        .encrypt(&nonce, Payload { msg: clear, aad })
        .unwrap_or_default();
    (B64.encode(nonce), B64.encode(ct))
}

fn open_bytes(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    nonce: &str,
    ct: &str,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let nonce = B64
        .decode(nonce)
        .map_err(|_| CryptoError::Format("nonce is not base64"))?;
    if nonce.len() != 12 {
        return Err(CryptoError::Format("nonce is not 96 bits"));
    }
    let ct = B64
        .decode(ct)
        .map_err(|_| CryptoError::Format("ciphertext is not base64"))?;
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Authentication)
}

impl DataKey {
    /// A fresh random data key with a random id.
    pub fn generate() -> Self {
        DataKey {
            id: format!("dek-{}", hex::encode(&random_bytes::<8>()[..])),
            key: random_bytes(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts the clear value of `field` of event `event_id`.
    pub fn seal(&self, event_id: Uuid, field: &str, clear: &str) -> EncryptedField {
        let aad = field_aad(&self.id, event_id, field);
        let (nonce, ct) = seal_bytes(&self.key, aad.as_bytes(), clear.as_bytes());
        EncryptedField {
            enc: FIELD_ALG.to_owned(),
            key: self.id.clone(),
            nonce,
            ct,
        }
    }

    /// Decrypts what [`DataKey::seal`] produced for the same event and field.
    pub fn open(
        &self,
        event_id: Uuid,
        field: &str,
        sealed: &EncryptedField,
    ) -> Result<String, CryptoError> {
        if sealed.enc != FIELD_ALG {
            return Err(CryptoError::Format("unknown algorithm"));
        }
        let aad = field_aad(&sealed.key, event_id, field);
        let clear = open_bytes(&self.key, aad.as_bytes(), &sealed.nonce, &sealed.ct)?;
        String::from_utf8(clear.to_vec()).map_err(|_| CryptoError::Format("not UTF-8"))
    }
}

// ---------------------------------------------------------------------------------------
// The vault
// ---------------------------------------------------------------------------------------

/// What the vault knows of a customer's data key, for reading.
#[derive(Debug)]
pub enum KeyState {
    Active(DataKey),
    /// Destroyed: the customer was erased; its sensitive values read as erased.
    Destroyed,
    /// Never created: values encrypted for this customer cannot exist.
    Missing,
}

/// Why the vault could not provide a key.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("customer {0} was erased: its data key is destroyed")]
    Erased(Uuid),
    #[error(
        "the data key of customer {customer} was wrapped by another master key ({found}, this engine has {expected})"
    )]
    WrongMasterKey {
        customer: Uuid,
        found: String,
        expected: String,
    },
    #[error("the data key of customer {customer} cannot be unwrapped: {reason}")]
    Corrupt { customer: Uuid, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The engine's keys: the keys derived from the master key and the key store holding the
/// wrapped data keys.
pub struct Vault {
    keys: Arc<dyn KeyStore>,
    wrapping_key: Zeroizing<[u8; KEY_LEN]>,
    index_key: IndexKey,
    digest_key: Zeroizing<[u8; KEY_LEN]>,
    kek_id: String,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vault(kek {}, ***)", self.kek_id)
    }
}

impl Vault {
    pub fn new(master: &MasterKey, keys: Arc<dyn KeyStore>) -> Self {
        Vault {
            keys,
            wrapping_key: derive(&master.0, LABEL_WRAP),
            index_key: IndexKey(derive(&master.0, LABEL_INDEX)),
            digest_key: derive(&master.0, LABEL_DIGEST),
            kek_id: master.fingerprint(),
        }
    }

    /// A vault whose data keys live in memory (tests, embedded mode).
    pub fn in_memory(master: &MasterKey) -> Self {
        Vault::new(master, Arc::new(MemoryKeyStore::new()))
    }

    pub fn key_store(&self) -> &Arc<dyn KeyStore> {
        &self.keys
    }

    pub fn index_key(&self) -> &IndexKey {
        &self.index_key
    }

    /// [`blind_index`] under this vault's index key.
    pub fn blind_index(&self, normalized_value: &str) -> String {
        blind_index(&self.index_key, normalized_value)
    }

    /// Keyed digest of a request payload in canonical JSON (HMAC-SHA256, hex), for
    /// idempotency: a payload carrying a phone number cannot be recovered from its digest
    /// by trying every number, as it could from a plain hash.
    pub fn request_digest(&self, payload: &serde_json::Value) -> String {
        // serde_json's Map is ordered by key, so serialising a Value is canonical.
        let canonical = serde_json::to_vec(payload).unwrap_or_default();
        hex::encode(hmac(&self.digest_key[..], &[&canonical]))
    }

    fn wrap_aad(customer: Uuid, key_id: &str) -> String {
        format!("loan-engine/v1/dek|{customer}|{key_id}")
    }

    fn wrap(&self, customer: Uuid, key: &DataKey) -> WrappedDek {
        let aad = Self::wrap_aad(customer, &key.id);
        let (nonce, wrapped) = seal_bytes(&self.wrapping_key, aad.as_bytes(), &key.key[..]);
        WrappedDek {
            key_id: key.id.clone(),
            alg: FIELD_ALG.to_owned(),
            kek_id: self.kek_id.clone(),
            nonce,
            wrapped,
        }
    }

    fn unwrap(&self, customer: Uuid, wrapped: &WrappedDek) -> Result<DataKey, VaultError> {
        if wrapped.kek_id != self.kek_id {
            return Err(VaultError::WrongMasterKey {
                customer,
                found: wrapped.kek_id.clone(),
                expected: self.kek_id.clone(),
            });
        }
        let corrupt = |reason: String| VaultError::Corrupt { customer, reason };
        if wrapped.alg != FIELD_ALG {
            return Err(corrupt(format!("unknown algorithm {}", wrapped.alg)));
        }
        let aad = Self::wrap_aad(customer, &wrapped.key_id);
        let clear = open_bytes(
            &self.wrapping_key,
            aad.as_bytes(),
            &wrapped.nonce,
            &wrapped.wrapped,
        )
        .map_err(|e| corrupt(e.to_string()))?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if clear.len() != KEY_LEN {
            return Err(corrupt("not a 256-bit key".into()));
        }
        key.copy_from_slice(&clear);
        Ok(DataKey {
            id: wrapped.key_id.clone(),
            key,
        })
    }

    /// The customer's data key, created on first use. Refused once the customer was
    /// erased: a destroyed key is never replaced.
    pub async fn key_for_writing(&self, customer: Uuid) -> Result<DataKey, VaultError> {
        let entry = match self.keys.get(customer).await? {
            Some(entry) => entry,
            None => {
                let fresh = DataKey::generate();
                self.keys
                    .create(customer, &self.wrap(customer, &fresh))
                    .await?
            }
        };
        match entry {
            KeyEntry::Active(wrapped) => self.unwrap(customer, &wrapped),
            KeyEntry::Destroyed => Err(VaultError::Erased(customer)),
        }
    }

    /// The customer's data key for reading.
    pub async fn key_for_reading(&self, customer: Uuid) -> Result<KeyState, VaultError> {
        match self.keys.get(customer).await? {
            Some(KeyEntry::Active(wrapped)) => {
                self.unwrap(customer, &wrapped).map(KeyState::Active)
            }
            Some(KeyEntry::Destroyed) => Ok(KeyState::Destroyed),
            None => Ok(KeyState::Missing),
        }
    }

    /// Crypto-shreds the customer: destroys its data key (idempotent).
    pub async fn destroy(&self, customer: Uuid) -> Result<(), StoreError> {
        self.keys.destroy(customer).await
    }
}

#[cfg(test)]
mod tests {
    // Dev-dependencies of the integration tests; the unit-test target links them too.
    use {async_nats as _, futures as _, loan_testkit as _};

    use super::*;

    #[test]
    fn a_created_key_file_reads_back_and_is_never_overwritten() {
        let path = std::env::temp_dir().join(format!("loan-master-{}.key", Uuid::now_v7()));
        let key = MasterKey::create_file(&path).expect("a new key file");
        let read = MasterKey::read_file(&path).expect("reads back");
        assert_eq!(read.fingerprint(), key.fingerprint());
        let again = MasterKey::create_file(&path).expect_err("an existing file is kept");
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(
            MasterKey::read_file(&path).unwrap().fingerprint(),
            key.fingerprint()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
        }
        let _ = std::fs::remove_file(&path);
    }

    fn event() -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
    }

    #[test]
    fn a_sealed_value_opens_to_the_clear_value() {
        let key = DataKey::generate();
        let sealed = key.seal(event(), "national_id", "11010519900307124X");
        assert_eq!(sealed.enc, FIELD_ALG);
        assert_eq!(sealed.key, key.id());
        assert!(!sealed.ct.contains("110105"));
        assert_eq!(
            key.open(event(), "national_id", &sealed).as_deref(),
            Ok("11010519900307124X")
        );
    }

    #[test]
    fn nonces_are_fresh_so_equal_values_encrypt_differently() {
        let key = DataKey::generate();
        let a = key.seal(event(), "phone", "13812345678");
        let b = key.seal(event(), "phone", "13812345678");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ct, b.ct);
    }

    #[test]
    fn a_value_moved_to_another_event_or_field_does_not_open() {
        let key = DataKey::generate();
        let sealed = key.seal(event(), "phone", "13812345678");
        let other_event = Uuid::from_u128(event().as_u128() + 1);
        assert_eq!(
            key.open(other_event, "phone", &sealed),
            Err(CryptoError::Authentication),
            "event id swapped"
        );
        assert_eq!(
            key.open(event(), "bank_card", &sealed),
            Err(CryptoError::Authentication),
            "field swapped"
        );
        let relabelled = EncryptedField {
            key: "dek-0000000000000000".into(),
            ..sealed.clone()
        };
        assert_eq!(
            key.open(event(), "phone", &relabelled),
            Err(CryptoError::Authentication),
            "key id relabelled"
        );
    }

    #[test]
    fn a_tampered_ciphertext_or_nonce_does_not_open() {
        let key = DataKey::generate();
        let sealed = key.seal(event(), "bank_card", "6222021234567890128");
        let mut ct = B64.decode(&sealed.ct).expect("base64");
        ct[0] ^= 1;
        let tampered = EncryptedField {
            ct: B64.encode(&ct),
            ..sealed.clone()
        };
        assert_eq!(
            key.open(event(), "bank_card", &tampered),
            Err(CryptoError::Authentication)
        );
        let mut nonce = B64.decode(&sealed.nonce).expect("base64");
        nonce[11] ^= 0x80;
        let tampered = EncryptedField {
            nonce: B64.encode(&nonce),
            ..sealed.clone()
        };
        assert_eq!(
            key.open(event(), "bank_card", &tampered),
            Err(CryptoError::Authentication)
        );
        let truncated = EncryptedField {
            ct: B64.encode(&ct[..4]),
            ..sealed
        };
        assert!(key.open(event(), "bank_card", &truncated).is_err());
    }

    #[test]
    fn another_key_does_not_open() {
        let sealed = DataKey::generate().seal(event(), "phone", "13812345678");
        assert_eq!(
            DataKey::generate().open(event(), "phone", &sealed),
            Err(CryptoError::Authentication)
        );
    }

    #[test]
    fn keys_never_print() {
        let master = MasterKey::from_bytes([0xAB; 32]);
        assert_eq!(format!("{master:?}"), "MasterKey(***)");
        assert_eq!(format!("{master:#?}"), "MasterKey(***)");
        let index = IndexKey::from_bytes([0xAB; 32]);
        assert_eq!(format!("{index:?}"), "IndexKey(***)");
        let key = DataKey::generate();
        let debug = format!("{key:?}");
        assert_eq!(debug, format!("DataKey({}, ***)", key.id()));
        let vault = Vault::in_memory(&master);
        assert!(!format!("{vault:?}").to_lowercase().contains("abab"));
    }

    #[test]
    fn master_keys_parse_from_hex_or_base64_and_errors_do_not_echo() {
        let hex_text = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let from_hex = MasterKey::parse(hex_text).expect("hex");
        let from_b64 =
            MasterKey::parse(&B64.encode(hex::decode(hex_text).expect("hex"))).expect("base64");
        assert_eq!(from_hex.fingerprint(), from_b64.fingerprint());
        assert_eq!(
            " 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
                .parse::<MasterKey>()
                .map(|k| k.fingerprint()),
            Ok(from_hex.fingerprint())
        );
        for bad in ["", "short", &hex_text[..62], &B64.encode([1u8; 31])] {
            let error = MasterKey::parse(bad).expect_err("refused");
            assert!(bad.is_empty() || !error.to_string().contains(bad));
        }
    }

    #[test]
    fn blind_indexes_are_deterministic_keyed_hex() {
        let key = IndexKey::from_bytes([7; 32]);
        let a = blind_index(&key, "13812345678");
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(a, blind_index(&key, "13812345678"));
        assert_ne!(a, blind_index(&key, "13812345679"));
        assert_ne!(
            a,
            blind_index(&IndexKey::from_bytes([8; 32]), "13812345678")
        );
        // RFC 4231 test case 2 (HMAC-SHA256, key "Jefe"): a key shorter than the block is
        // zero-padded by HMAC, so "Jefe" and "Jefe" + 28 zero bytes are the same key.
        let mut jefe = [0u8; 32];
        jefe[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            blind_index(&IndexKey::from_bytes(jefe), "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn derived_keys_are_distinct_and_depend_on_the_master_key() {
        let master = MasterKey::from_bytes([1; 32]);
        let wrap = derive(&master.0, LABEL_WRAP);
        let index = derive(&master.0, LABEL_INDEX);
        let digest = derive(&master.0, LABEL_DIGEST);
        assert_ne!(*wrap, *index);
        assert_ne!(*index, *digest);
        assert_ne!(*wrap, *master.0);
        assert_ne!(*derive(&[2; 32], LABEL_INDEX), *index);
        let other = Vault::in_memory(&MasterKey::from_bytes([2; 32]));
        let vault = Vault::in_memory(&master);
        let payload = serde_json::json!({ "phone": "13812345678" });
        assert_ne!(
            vault.request_digest(&payload),
            other.request_digest(&payload)
        );
        assert_eq!(vault.request_digest(&payload).len(), 64);
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn data_keys_are_created_once_wrapped_and_destroyed_for_good() {
        block_on(async {
            let master = MasterKey::generate();
            let store = Arc::new(MemoryKeyStore::new());
            let vault = Vault::new(&master, store.clone());
            let customer = Uuid::from_u128(0xC1);
            assert!(matches!(
                vault.key_for_reading(customer).await,
                Ok(KeyState::Missing)
            ));
            let key = vault.key_for_writing(customer).await.expect("created");
            let again = vault.key_for_writing(customer).await.expect("same key");
            assert_eq!(key.id(), again.id());
            assert_eq!(*key.key, *again.key);

            // The store holds the key wrapped only.
            let Some(KeyEntry::Active(wrapped)) = store.get(customer).await.expect("get") else {
                panic!("an active key");
            };
            let wrapped_bytes = B64.decode(&wrapped.wrapped).expect("base64");
            assert!(
                !wrapped_bytes
                    .windows(8)
                    .any(|w| key.key.windows(8).any(|k| k == w)),
                "the clear data key is not in the store"
            );
            assert_eq!(wrapped.kek_id, master.fingerprint());

            // Bound to its customer: the same wrapped key under another customer fails.
            let other = Uuid::from_u128(0xC2);
            store.create(other, &wrapped).await.expect("create");
            assert!(matches!(
                vault.key_for_reading(other).await,
                Err(VaultError::Corrupt { .. })
            ));

            // Another master key is refused as such.
            let stranger = Vault::new(&MasterKey::generate(), store.clone());
            assert!(matches!(
                stranger.key_for_reading(customer).await,
                Err(VaultError::WrongMasterKey { .. })
            ));

            vault.destroy(customer).await.expect("destroy");
            assert!(matches!(
                vault.key_for_reading(customer).await,
                Ok(KeyState::Destroyed)
            ));
            assert!(matches!(
                vault.key_for_writing(customer).await,
                Err(VaultError::Erased(c)) if c == customer
            ));
            vault.destroy(customer).await.expect("idempotent");
        });
    }
}
