//! Typed identifiers. Ids are chosen by the caller (UUIDs) and arrive inside commands:
//! the domain never generates one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                $name(value)
            }
        }
    };
}

id_type!(
    /// Identifies a customer aggregate.
    CustomerId
);
id_type!(
    /// Identifies a loan aggregate (from lead to closure).
    LoanId
);
id_type!(
    /// Identifies a collection case (one loan's arrears episode worked by collections).
    CollectionCaseId
);
