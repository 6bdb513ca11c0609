//! The service is a NATS micro service: `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` answer
//! (what `nats micro ls/info/stats` use), with one endpoint per command on
//! `<prefix>.cmd.<aggregate>.<command>`.

use std::collections::BTreeMap;

use loan_domain::CommandKind;

use crate::harness::{Harness, SERVICE_NAME, onboard_customer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_info_and_stats_describe_one_endpoint_per_command() {
    let h = Harness::new().await;
    let instance = h.start_instance().await;
    h.wait_for_instances(1).await;

    let ping = h.service_answers("PING", 1).await;
    assert_eq!(ping.len(), 1);
    assert_eq!(ping[0]["name"], SERVICE_NAME);
    assert_eq!(ping[0]["type"], "io.nats.micro.v1.ping_response");
    let id = ping[0]["id"].as_str().expect("an instance id").to_owned();
    assert!(!id.is_empty());
    assert_eq!(ping[0]["version"], env!("CARGO_PKG_VERSION"));

    let info = h.service_answers("INFO", 1).await;
    let info = &info[0];
    assert_eq!(info["type"], "io.nats.micro.v1.info_response");
    assert_eq!(info["id"], id.as_str());
    assert!(
        !info["description"].as_str().unwrap_or_default().is_empty(),
        "the service describes itself"
    );
    let endpoints: BTreeMap<String, String> = info["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("endpoint name").to_owned(),
                e["subject"].as_str().expect("endpoint subject").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        info["endpoints"].as_array().map(Vec::len),
        Some(CommandKind::ALL.len()),
        "one endpoint per command"
    );
    for kind in CommandKind::ALL {
        let expected = format!(
            "{}.cmd.{}.{}",
            h.prefix,
            kind.aggregate().as_str(),
            kind.name()
        );
        assert_eq!(
            endpoints.get(kind.name()),
            Some(&expected),
            "endpoint of {kind}"
        );
    }
    let queue_groups: Vec<&str> = info["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["queue_group"].as_str())
        .collect();
    assert_eq!(
        queue_groups.len(),
        CommandKind::ALL.len(),
        "every endpoint is queue-grouped"
    );

    // The name-and-id forms answer too (`nats micro info loan-commands <id>`).
    let by_id = h
        .answers_on(format!("$SRV.INFO.{SERVICE_NAME}.{id}"), 1)
        .await;
    assert_eq!(by_id[0]["id"], id.as_str());
    let all_services = h.answers_on("$SRV.PING".into(), 1).await;
    assert_eq!(all_services[0]["id"], id.as_str());

    // STATS counts requests per endpoint.
    let count = |stats: &serde_json::Value, kind: CommandKind| {
        stats["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["name"] == kind.name())
            .and_then(|e| e["num_requests"].as_u64())
            .expect("a request count")
    };
    let before = h.service_answers("STATS", 1).await;
    onboard_customer(&h).await;
    let after = h.service_answers("STATS", 1).await;
    assert_eq!(
        count(&after[0], CommandKind::RegisterCustomer),
        count(&before[0], CommandKind::RegisterCustomer) + 1
    );
    assert_eq!(
        count(&after[0], CommandKind::VerifyIdentity),
        count(&before[0], CommandKind::VerifyIdentity) + 1
    );
    instance.stop().await;
}
