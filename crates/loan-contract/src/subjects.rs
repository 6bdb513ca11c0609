//! The subject map: which NATS subject carries what.
//!
//! | subject | carries |
//! |---|---|
//! | `<prefix>.cmd.<aggregate>.<command>` | a command request (reply: [`crate::CommandReply`]) |
//! | `<prefix>.events.<aggregate>.<aggregate_id>` | the commits of one aggregate |
//! | `<prefix>.checkpoints` | the log's checkpoints ([`crate::Checkpoint`]), in the same stream |
//! | `<prefix>.notify.<kind>` | a notification for people ([`crate::Notification`]) |
//!
//! One subject per command lets NATS permissions decide who may send what; one subject
//! per aggregate lets the store use `Nats-Expected-Last-Subject-Sequence` for optimistic
//! concurrency and read one aggregate's history without scanning the stream.

use loan_domain::{AggregateType, CommandKind};

use crate::notification::NotificationKind;
use uuid::Uuid;

/// The subject names under one prefix (e.g. `lending`, or a per-test prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// `prefix` must be one or more NATS tokens without wildcards.
    pub fn new(prefix: impl Into<String>) -> Result<Self, String> {
        let prefix = prefix.into();
        let valid_token = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !prefix.split('.').all(valid_token) {
            return Err(format!(
                "subject prefix {prefix:?} must be dot-separated tokens of letters, digits, _ or -"
            ));
        }
        Ok(Subjects { prefix })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>.cmd.<aggregate>.<command>`, e.g. `lending.cmd.loan.disburse_loan`.
    pub fn command(&self, kind: CommandKind) -> String {
        format!(
            "{}.cmd.{}.{}",
            self.prefix,
            kind.aggregate().as_str(),
            kind.name()
        )
    }

    /// `<prefix>.cmd.>`: every command subject (what a command service subscribes to).
    pub fn all_commands(&self) -> String {
        format!("{}.cmd.>", self.prefix)
    }

    /// The command a subject names, if any.
    pub fn command_kind(&self, subject: &str) -> Option<CommandKind> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix(".cmd.")?;
        let (aggregate, name) = rest.split_once('.')?;
        CommandKind::named(aggregate, name)
    }

    /// `<prefix>.events.<aggregate>.<id>`.
    pub fn events(&self, aggregate: AggregateType, id: Uuid) -> String {
        format!("{}.events.{}.{}", self.prefix, aggregate.as_str(), id)
    }

    /// `<prefix>.events.>`: every event subject (what the stream captures).
    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// `<prefix>.checkpoints`: the log's checkpoints, captured by the event stream next to
    /// the commits but outside `<prefix>.events.>`, so consumers of the events never see
    /// them.
    pub fn checkpoints(&self) -> String {
        format!("{}.checkpoints", self.prefix)
    }

    /// `<prefix>.notify.<kind>`, e.g. `lending.notify.due_reminder`.
    pub fn notification(&self, kind: NotificationKind) -> String {
        format!("{}.notify.{}", self.prefix, kind.name())
    }

    /// `<prefix>.notify.>`: every notification subject (what the notification stream captures).
    pub fn all_notifications(&self) -> String {
        format!("{}.notify.>", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_subject_maps_back_to_its_command() {
        let subjects = Subjects::new("lending").unwrap();
        for kind in CommandKind::ALL {
            assert_eq!(
                subjects.command_kind(&subjects.command(kind)),
                Some(kind),
                "{kind}"
            );
        }
        assert_eq!(
            subjects.command_kind("lending.cmd.loan.no_such_command"),
            None
        );
        assert_eq!(
            subjects.command_kind("lending.cmd.customer.disburse_loan"),
            None,
            "aggregate must match"
        );
        assert_eq!(subjects.command_kind("other.cmd.loan.disburse_loan"), None);
    }

    #[test]
    fn prefixes_with_wildcards_are_refused() {
        assert!(Subjects::new("lending.*").is_err());
        assert!(Subjects::new("a..b").is_err());
        assert!(Subjects::new("test-1.lending").is_ok());
    }
}
