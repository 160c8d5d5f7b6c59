//! Support code shared by the integration tests (and the demo).

#[cfg(feature = "dns")]
pub mod bind;
#[cfg(feature = "dns")]
pub mod dns;
pub mod https;
pub mod memory;
#[cfg(feature = "rustls")]
pub mod smtp;
#[cfg(feature = "resolver")]
pub mod world;
pub mod x509;
