//! Support code shared by the integration tests (and the demo).

pub mod https;
