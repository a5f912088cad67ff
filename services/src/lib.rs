//! The reference backing services (work in progress).
