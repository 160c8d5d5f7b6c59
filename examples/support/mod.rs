//! The local world the demo starts (DNS, HTTPS policy hosts, SMTP servers,
//! a CA) and a small SMTP client; the integration tests and benches use it too.

#[cfg(feature = "dns")]
pub mod bind;
#[cfg(feature = "dns")]
pub mod dns;
pub mod https;
pub mod matrix;
pub mod memory;
#[cfg(feature = "rustls")]
pub mod smtp;
#[cfg(feature = "resolver")]
pub mod world;
pub mod x509;
