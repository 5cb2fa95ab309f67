//! SM-DP+ domain logic, free of I/O: activation codes, the ES9+ JSON shapes, SGP.22 status
//! codes; orders, download sessions and policies as the server grows.

pub mod activation_code;
pub mod callbacks;
pub mod es2_json;
pub mod es9_json;
pub mod qr;
pub mod rpm_json;
pub mod status;
pub mod webhook;

pub use activation_code::{ActivationCode, ActivationCodeError};
