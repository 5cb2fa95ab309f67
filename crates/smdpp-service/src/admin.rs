//! The lookup behind the operators' admin API ([`smdpp_server::admin`]): an order's
//! Activation Code, with the same rules as `smdpp orders qr`.

use smdpp_server::{AdminError, AdminService, OrderActivationCode};
use smdpp_store::{ProfileState, Store, StoreError};

use crate::assembly::activation_code;

/// Answers admin lookups from the store, with the server's SM-DP+ address.
#[derive(Clone)]
pub struct AdminOrders {
    store: Store,
    smdp_address: String,
}

impl AdminOrders {
    /// `smdp_address`: the SM-DP+ address as the ES9+ engine knows it.
    pub fn new(store: Store, smdp_address: String) -> AdminOrders {
        AdminOrders {
            store,
            smdp_address,
        }
    }
}

impl AdminService for AdminOrders {
    async fn activation_code(
        &self,
        operator_id: &str,
        iccid: &str,
    ) -> Result<OrderActivationCode, AdminError> {
        let p = match self.store.get_profile(iccid).await {
            Ok(Some(p)) if p.operator_id.as_deref() == Some(operator_id) => p,
            // Unknown, another operator's, or not an ICCID: all the same to the caller.
            Ok(_) | Err(StoreError::InvalidInput(_)) => return Err(AdminError::NotFound),
            Err(e) => {
                tracing::error!(error = %e, "admin order lookup failed");
                return Err(AdminError::Unavailable);
            }
        };
        if !matches!(
            p.state,
            ProfileState::Confirmed | ProfileState::Released | ProfileState::Downloaded
        ) {
            return Err(AdminError::Conflict(format!(
                "profile {} is {}: no Activation Code",
                p.iccid, p.state
            )));
        }
        let Some(mid) = p.matching_id.as_deref() else {
            return Err(AdminError::Conflict(
                "order without MatchingID (default SM-DP+)".into(),
            ));
        };
        Ok(OrderActivationCode {
            activation_code: activation_code(&self.smdp_address, mid, p.cc_hash.is_some()),
            state: p.state.to_string(),
            iccid: p.iccid,
        })
    }
}
