//! Skeleton: to be implemented.
