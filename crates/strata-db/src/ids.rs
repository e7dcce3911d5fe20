//! One newtype per ID: mixing up two kinds of ID does not compile.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new UUIDv7: time-ordered, so inserts append to the primary key index.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps a UUID read from elsewhere (a request path, say).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn into_uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// The ID of an organization (a tenant).
    OrganizationId
);
id_type!(
    /// The ID of an API token (the public part of the token).
    ApiTokenId
);
id_type!(
    /// The ID of a user.
    UserId
);
id_type!(
    /// The ID of a project.
    ProjectId
);
id_type!(
    /// The ID of a task.
    TaskId
);
id_type!(
    /// The ID of a comment.
    CommentId
);
id_type!(
    /// The ID of an audit event.
    AuditEventId
);
id_type!(
    /// The ID of an outbox event.
    OutboxEventId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_version_7_and_time_ordered() {
        let first = OrganizationId::new();
        let second = OrganizationId::new();
        assert_eq!(first.into_uuid().get_version_num(), 7);
        assert!(first < second);
    }
}
