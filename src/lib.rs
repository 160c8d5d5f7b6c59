//! Outbound SMTP transport security for a sending MTA.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod name;
pub mod sts;

pub use error::{ParseError, ParseErrorKind};
