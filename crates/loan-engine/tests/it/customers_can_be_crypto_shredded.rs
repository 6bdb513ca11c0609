//! National ID, bank card and phone never reach the store in clear; a customer reloads
//! with them while its data key exists; `erase_customer` destroys the key, after which
//! the unchanged history still replays and shows them as erased, and the customer's
//! loans keep being serviced while new lending is refused.

use std::sync::Arc;

use futures::StreamExt;
use loan_contract::{ErrorCode, decode_command};
use loan_domain::customer::{Customer, Sensitive};
use loan_domain::pii::{BankCard, NationalId, PhoneNumber};
use loan_domain::{AggregateType, CommandKind};
use loan_engine::vault::FIELD_ALG;
use loan_engine::{Engine, EngineConfig, MasterKey, State, Vault};
use loan_store::keys::{
    JetStreamKeyStore, KeyEntry, KeyStore, KeyStoreConfig, MemoryKeyStore, WrappedDek,
};
use loan_store::{AggregateRef, Commit, EventStore, History};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{
    BANK_CARD, Driver, NEW_PHONE, PHONE, assert_nothing_in_clear, disburse, national_id, ok,
    ok_events, onboard, refused, request, signed_loan,
};
use loan_store::memory::MemoryStore;

fn customer_ref(id: Uuid) -> AggregateRef {
    AggregateRef {
        aggregate_type: AggregateType::Customer,
        id,
    }
}

async fn rebuild_customer(vault: &Vault, history: &History, id: Uuid) -> Customer {
    match loan_engine::rebuild(vault, customer_ref(id), history)
        .await
        .expect("the history replays")
        .state
    {
        State::Customer(customer) => customer,
        other => panic!("rebuilt as another aggregate: {other:?}"),
    }
}

/// The stored data of the first event of `event_type` in the commits.
fn stored_data(commits: &[Commit], event_type: &str) -> serde_json::Map<String, Value> {
    commits
        .iter()
        .flat_map(|c| &c.events)
        .find(|e| e.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} stored"))
        .data
        .clone()
}

fn assert_encrypted(value: &Value, what: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not encrypted: {value}"));
    assert_eq!(object["enc"], FIELD_ALG, "{what}");
    assert!(
        object["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("dek-")),
        "{what} names its data key"
    );
    assert!(
        object["nonce"].is_string() && object["ct"].is_string(),
        "{what}"
    );
    assert_eq!(object.len(), 4, "{what}: exactly enc, key, nonce, ct");
}

fn commits(raw: &[Vec<u8>]) -> Vec<Commit> {
    raw.iter()
        .map(|bytes| Commit::from_bytes(bytes).expect("a commit"))
        .collect()
}

#[tokio::test]
async fn sensitive_values_are_encrypted_at_rest_and_erasure_shreds_them() {
    let store = MemoryStore::new();
    let keys = Arc::new(MemoryKeyStore::new());
    let master = MasterKey::generate();
    let vault = || Vault::new(&master, keys.clone());
    let mut d = Driver::new(
        Engine::new(store.clone(), vault(), EngineConfig::default()),
        "2026-01-05",
    );
    let customer_id = Uuid::now_v7();
    let register_command = Uuid::now_v7();
    onboard(&d, customer_id, register_command).await;
    let serviced = signed_loan(&d, customer_id).await;
    let waiting = signed_loan(&d, customer_id).await;
    d.today = "2026-01-10".into();
    assert_eq!(ok(disburse(&d, serviced).await), ["loan_disbursed"]);
    let national_id = national_id();
    let secrets = [national_id.as_str(), BANK_CARD, PHONE, NEW_PHONE];

    // 1. Nothing sensitive reaches the store in clear.
    let before = store.raw();
    for (index, bytes) in before.iter().enumerate() {
        assert_nothing_in_clear(&format!("stored commit {}", index + 1), bytes, &secrets);
    }
    let stored = commits(&before);
    let registered = stored_data(&stored, "customer_registered");
    for field in ["national_id", "bank_card", "phone"] {
        assert_encrypted(&registered[field], field);
    }
    let contact = stored_data(&stored, "contact_updated");
    assert_encrypted(&contact["phone"], "new phone");
    // ...but the blind indexes let a lookup find the customer by national ID or phone.
    let index = vault();
    assert_eq!(
        registered["national_id_index"],
        index.blind_index(&national_id)
    );
    assert_eq!(registered["phone_index"], index.blind_index(PHONE));
    assert_eq!(contact["phone_index"], index.blind_index(NEW_PHONE));
    assert!(
        !registered.contains_key("bank_card_index"),
        "cards are not looked up"
    );
    // The idempotency digest of a payload carrying a phone is keyed: not the plain SHA-256
    // of the payload, which could be reversed by trying every phone number.
    let contact_commit = stored
        .iter()
        .find(|c| c.command == CommandKind::UpdateContact)
        .expect("contact commit");
    let payload = json!({ "customer_id": customer_id, "phone": NEW_PHONE });
    let body = serde_json::to_vec(&request(Uuid::now_v7(), &["customer_service"], payload))
        .expect("serialise");
    let decoded = decode_command(CommandKind::UpdateContact, &body).expect("decodes");
    assert_ne!(
        contact_commit.request_digest,
        loan_store::request_digest(&decoded.command.payload_json())
    );
    assert_eq!(
        contact_commit.request_digest,
        index.request_digest(&decoded.command.payload_json())
    );

    // 2. While the key exists the customer reloads from the store with its clear values.
    let history = store.load(customer_ref(customer_id)).await.expect("load");
    let customer = rebuild_customer(&vault(), &history, customer_id).await;
    let profile = customer.profile().expect("registered");
    assert_eq!(customer.status(), "registered");
    assert_eq!(
        profile.national_id,
        Sensitive::Known(NationalId::parse(&national_id).expect("valid"))
    );
    assert_eq!(
        profile.bank_card,
        Sensitive::Known(BankCard::parse(BANK_CARD).expect("valid"))
    );
    assert_eq!(
        profile.phone,
        Sensitive::Known(PhoneNumber::parse(NEW_PHONE).expect("valid"))
    );
    // A retried registration gets its original events back, decrypted from the store.
    let replayed = d
        .send_with_id(
            register_command,
            CommandKind::RegisterCustomer,
            &["customer_service"],
            crate::support::registration(customer_id),
        )
        .await;
    let text = serde_json::to_string(&replayed).expect("serialise");
    assert!(
        text.contains(&national_id),
        "decrypted while the key exists"
    );

    // 3. Only a data protection officer may erase.
    let erase =
        json!({ "customer_id": customer_id, "reason": "data subject erasure request DSR-7" });
    d.today = "2026-01-12".into();
    let error = refused(
        d.send(
            CommandKind::EraseCustomer,
            &["risk_manager", "customer_service"],
            erase.clone(),
        )
        .await,
    );
    assert_eq!(error.code, ErrorCode::Forbidden);
    let Some(KeyEntry::Active(_)) = keys.get(customer_id).await.expect("get") else {
        panic!("a refused erasure leaves the key");
    };
    assert_eq!(
        ok(d.send(
            CommandKind::EraseCustomer,
            &["data_protection_officer"],
            erase.clone()
        )
        .await),
        ["customer_erased"]
    );
    assert_eq!(
        keys.get(customer_id).await.expect("get"),
        Some(KeyEntry::Destroyed),
        "the data key is destroyed before the reply"
    );

    // 4. The stored history is untouched: the same bytes, plus the erasure event.
    let after = store.raw();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "erasure rewrites nothing"
    );
    assert_nothing_in_clear("the erasure commit", &after[before.len()], &secrets);

    // 5. The history replays, with fresh keys objects, and shows the values as erased.
    let history = store.load(customer_ref(customer_id)).await.expect("load");
    let customer = rebuild_customer(&vault(), &history, customer_id).await;
    assert_eq!(customer.status(), "erased");
    let profile = customer.profile().expect("kept");
    assert_eq!(profile.national_id, Sensitive::Erased);
    assert_eq!(profile.bank_card, Sensitive::Erased);
    assert_eq!(profile.phone, Sensitive::Erased);
    assert_eq!(profile.national_id.to_string(), "erased");
    assert_eq!(profile.name, "Li Wei", "the rest of the profile stays");
    assert!(profile.identity_verified());
    // Even without the erasure event (as an auditor replaying up to before it would),
    // the values read as erased: the key is what is gone.
    let before_erasure = History {
        commits: history.commits[..history.commits.len() - 1].to_vec(),
    };
    let earlier = rebuild_customer(&vault(), &before_erasure, customer_id).await;
    assert_eq!(earlier.status(), "registered");
    assert_eq!(
        earlier.profile().map(|p| &p.national_id),
        Some(&Sensitive::Erased)
    );
    // The original registration reply, replayed, shows "erased" and nothing in clear.
    let replayed = d
        .send_with_id(
            register_command,
            CommandKind::RegisterCustomer,
            &["customer_service"],
            crate::support::registration(customer_id),
        )
        .await;
    let events = ok_events(&replayed);
    let data = serde_json::to_value(&events[0]).expect("serialise")["data"].clone();
    assert_eq!(data["national_id"], "erased");
    assert_eq!(data["bank_card"], "erased");
    assert_eq!(data["phone"], "erased");
    assert_nothing_in_clear(
        "the replayed reply",
        serde_json::to_string(&replayed)
            .expect("serialise")
            .as_bytes(),
        &secrets,
    );

    // 6. A fresh engine (nothing cached) services the loan of the erased customer...
    let fresh = Driver::new(
        Engine::new(store.clone(), vault(), EngineConfig::default()),
        "2026-01-12",
    );
    let repaid = fresh
        .send(
            CommandKind::RecordRepayment,
            &["finance"],
            json!({ "loan_id": serviced, "payment_reference": "PAY-1", "amount": "100.00", "value_date": "2026-01-12" }),
        )
        .await;
    assert!(ok(repaid).contains(&"repayment_recorded"));
    // ...but refuses to disburse to them, or to take a new lead.
    let error = refused(disburse(&fresh, waiting).await);
    assert_eq!(
        (error.code, error.message.contains("erased")),
        (ErrorCode::RuleViolated, true)
    );
    let error = refused(
        fresh
            .send(
                CommandKind::CaptureLead,
                &["loan_officer"],
                json!({ "loan_id": Uuid::now_v7(), "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "5000.00", "currency": "CNY", "term_months": 6 }),
            )
            .await,
    );
    assert_eq!(error.code, ErrorCode::RuleViolated);
    // No new personal data for an erased customer; erasing again changes nothing.
    let error = refused(
        fresh
            .send(
                CommandKind::UpdateContact,
                &["customer_service"],
                json!({ "customer_id": customer_id, "phone": PHONE }),
            )
            .await,
    );
    assert_eq!(error.code, ErrorCode::InvalidTransition);
    assert_eq!(
        ok(fresh
            .send(
                CommandKind::EraseCustomer,
                &["data_protection_officer"],
                erase
            )
            .await),
        Vec::<&str>::new()
    );
    assert_eq!(
        keys.get(customer_id).await.expect("get"),
        Some(KeyEntry::Destroyed)
    );
}

#[tokio::test]
async fn a_destroyed_key_is_never_recreated_and_a_missing_one_is_not_taken_for_erased() {
    let store = MemoryStore::new();
    let keys = Arc::new(MemoryKeyStore::new());
    let master = MasterKey::generate();
    let d = Driver::new(
        Engine::new(
            store.clone(),
            Vault::new(&master, keys.clone()),
            EngineConfig::default(),
        ),
        "2026-01-05",
    );
    let customer_id = Uuid::now_v7();
    onboard(&d, customer_id, Uuid::now_v7()).await;
    let history = store.load(customer_ref(customer_id)).await.expect("load");

    // Another master key cannot read the data: it is reported, not shown as erased.
    let stranger = Vault::new(&MasterKey::generate(), keys.clone());
    assert!(
        loan_engine::rebuild(&stranger, customer_ref(customer_id), &history)
            .await
            .is_err()
    );
    // Nor can a key store that lost the key without destroying it.
    let amnesiac = Vault::new(&master, Arc::new(MemoryKeyStore::new()));
    let error = loan_engine::rebuild(&amnesiac, customer_ref(customer_id), &history)
        .await
        .expect_err("missing key");
    assert!(error.to_string().contains("missing"), "{error}");

    // A tampered ciphertext makes the commit corrupt rather than erased.
    let mut tampered = history.clone();
    let data = &mut tampered.commits[0].commit.events[0].data;
    let ct = data["bank_card"]["ct"].as_str().expect("ct").to_owned();
    let flipped = if ct.starts_with('A') { "B" } else { "A" };
    data["bank_card"]["ct"] = Value::String(format!("{flipped}{}", &ct[1..]));
    assert!(
        loan_engine::rebuild(
            &Vault::new(&master, keys.clone()),
            customer_ref(customer_id),
            &tampered
        )
        .await
        .is_err()
    );

    // After erasure no command can bring a key back for the customer.
    keys.destroy(customer_id).await.expect("destroy");
    let vault = Vault::new(&master, keys.clone());
    assert!(vault.key_for_writing(customer_id).await.is_err());
    let fresh = WrappedDek {
        key_id: "dek-0000000000000001".into(),
        alg: FIELD_ALG.into(),
        kek_id: master.fingerprint(),
        nonce: String::new(),
        wrapped: String::new(),
    };
    assert_eq!(
        keys.create(customer_id, &fresh).await.expect("create"),
        KeyEntry::Destroyed
    );
}

/// The same guarantees with the production backends: the JetStream event store and the
/// JetStream KV key bucket, read back as raw messages.
#[tokio::test]
async fn with_jetstream_the_stream_holds_no_clear_value_and_the_bucket_no_key_after_erasure() {
    let server = loan_testkit::NatsServer::start();
    let client = async_nats::connect(server.url()).await.expect("connect");
    let unique = Uuid::now_v7().simple().to_string()[20..].to_uppercase();
    let stream = format!("EVENTS_{unique}");
    let prefix = format!("t{}", unique.to_lowercase());
    let subjects = loan_contract::Subjects::new(prefix.clone()).expect("prefix");
    let open_store = || async {
        loan_store::jetstream::JetStreamStore::open(
            client.clone(),
            loan_store::jetstream::StoreConfig::new(stream.clone(), subjects.clone()),
        )
        .await
        .expect("open store")
    };
    let open_keys = || async {
        JetStreamKeyStore::open(client.clone(), KeyStoreConfig::for_stream(&stream, 1))
            .await
            .expect("open key bucket")
    };
    let master = MasterKey::generate();
    let d = Driver::new(
        Engine::new(
            open_store().await,
            Vault::new(&master, Arc::new(open_keys().await)),
            EngineConfig::default(),
        ),
        "2026-01-05",
    );
    let customer_id = Uuid::now_v7();
    onboard(&d, customer_id, Uuid::now_v7()).await;
    let national_id = national_id();
    let secrets = [national_id.as_str(), BANK_CARD, PHONE, NEW_PHONE];

    let js = async_nats::jetstream::new(client.clone());
    let raw_messages = |stream_name: String, filter: String| {
        let js = js.clone();
        async move {
            let stream = js.get_stream(&stream_name).await.expect("stream exists");
            let mut out = Vec::new();
            let mut next = 1;
            while let Ok(message) = stream
                .direct_get_next_for_subject(filter.clone(), Some(next))
                .await
            {
                next = message.sequence + 1;
                out.push(message.payload.to_vec());
            }
            out
        }
    };
    let events_before = raw_messages(stream.clone(), format!("{prefix}.events.>")).await;
    assert_eq!(events_before.len(), 4, "four customer commits");
    for bytes in &events_before {
        assert_nothing_in_clear("a message of the event stream", bytes, &secrets);
    }

    // The bucket holds the data key wrapped, never in clear.
    let bucket = format!("{stream}_KEYS");
    let key_messages = raw_messages(format!("KV_{bucket}"), format!("$KV.{bucket}.>")).await;
    assert_eq!(key_messages.len(), 1);
    let wrapped: WrappedDek = serde_json::from_slice(&key_messages[0]).expect("a wrapped key");
    assert_eq!(wrapped.kek_id, master.fingerprint());

    let reply = d
        .send(
            CommandKind::EraseCustomer,
            &["data_protection_officer"],
            json!({ "customer_id": customer_id, "reason": "data subject erasure request DSR-8" }),
        )
        .await;
    assert_eq!(ok(reply), ["customer_erased"]);

    // The event stream is unchanged but for the erasure; the key's history is purged.
    let events_after = raw_messages(stream.clone(), format!("{prefix}.events.>")).await;
    assert_eq!(&events_after[..events_before.len()], &events_before[..]);
    assert_eq!(events_after.len(), events_before.len() + 1);
    let key_messages = raw_messages(format!("KV_{bucket}"), format!("$KV.{bucket}.>")).await;
    assert!(
        key_messages
            .iter()
            .all(|m| !String::from_utf8_lossy(m).contains(&wrapped.wrapped)),
        "no copy of the wrapped key is left in the bucket"
    );
    let kv = js.get_key_value(&bucket).await.expect("bucket");
    let mut history = kv
        .history(format!("customer.{customer_id}"))
        .await
        .expect("history");
    let mut operations = Vec::new();
    while let Some(Ok(entry)) = history.next().await {
        operations.push(entry.operation);
    }
    assert_eq!(
        operations,
        [async_nats::jetstream::kv::Operation::Purge],
        "only the purge marker is left"
    );

    // Another instance (new connections, nothing cached) replays the customer as erased.
    let other = Vault::new(&master, Arc::new(open_keys().await));
    let history = open_store()
        .await
        .load(customer_ref(customer_id))
        .await
        .expect("load");
    let customer = rebuild_customer(&other, &history, customer_id).await;
    assert_eq!(customer.status(), "erased");
    assert_eq!(
        customer.profile().map(|p| p.phone.clone()),
        Some(Sensitive::Erased)
    );
    assert!(matches!(
        other.key_for_writing(customer_id).await,
        Err(loan_engine::vault::VaultError::Erased(_))
    ));
}
