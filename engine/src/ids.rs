//! Typed identifiers: one newtype per entity so that a desk id can never be passed as a user id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered identifier (UUID v7), so that ids sort by creation time.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_type!(
    /// Identifies a tenant (an authority).
    TenantId,
    /// Identifies a user of a tenant.
    UserId,
    /// Identifies a desk (*bureau*).
    DeskId,
    /// Identifies a delegation between two desks.
    DelegationId,
    /// Identifies a circuit instantiated by a tenant.
    CircuitId,
    /// Identifies a dossier.
    DossierId,
    /// Identifies a journal entry.
    EntryId,
    /// Identifies an outbox job.
    JobId,
    /// Identifies an annotation.
    AnnotationId,
    /// Identifies a second-opinion request.
    OpinionId,
    /// Identifies a two-phase signature batch.
    SignatureBatchId,
    /// Identifies a key held by the server's PKCS#11 module.
    ServerKeyId,
    /// Identifies an entry of a tenant's trust store (CA certificate or CRL).
    TrustAnchorId,
    /// Identifies a webhook subscription.
    WebhookId,
);
