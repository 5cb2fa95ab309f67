//! SM-DP+ domain logic, free of I/O: activation codes now; orders, download sessions and the
//! mapping of every failure to an SGP.22 subjectCode/reasonCode as the server grows.

pub mod activation_code;

pub use activation_code::{ActivationCode, ActivationCodeError};
