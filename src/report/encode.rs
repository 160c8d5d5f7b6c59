//! Counts as stored outside the process (journal, snapshot, Redis): plain
//! strings and numbers, validated again when read, like cache snapshots.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::collect::{Increment, Window};
use super::{FailureDetail, PolicyType, ReportPolicy, ResultType};
use crate::name::DomainName;

/// An increment as stored: plain strings, validated again when read.
#[derive(Serialize, Deserialize)]
pub(crate) struct CountRecord {
    pub(crate) window: (u64, u64),
    domain: String,
    policy_type: PolicyType,
    #[serde(default)]
    policy_string: Vec<String>,
    #[serde(default)]
    mx_host: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<FailureRecord>,
    pub(crate) count: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct FailureRecord {
    result_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sending_mta_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receiving_mx_hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receiving_mx_helo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receiving_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    additional_information: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure_reason_code: Option<String>,
}

impl CountRecord {
    pub(crate) fn new(window: Window, policy: &ReportPolicy, failure: Option<&FailureDetail>, count: u64) -> Self {
        Self {
            window: (window.start_secs(), window.length_secs()),
            domain: policy.policy_domain.to_string(),
            policy_type: policy.policy_type,
            policy_string: policy.policy_string.clone(),
            mx_host: policy.mx_host.clone(),
            failure: failure.map(|f| FailureRecord {
                result_type: f.result_type.as_str().to_owned(),
                sending_mta_ip: f.sending_mta_ip,
                receiving_mx_hostname: f.receiving_mx_hostname.clone(),
                receiving_mx_helo: f.receiving_mx_helo.clone(),
                receiving_ip: f.receiving_ip,
                additional_information: f.additional_information.clone(),
                failure_reason_code: f.failure_reason_code.clone(),
            }),
            count,
        }
    }

    pub(crate) fn increment(&self) -> Result<Increment, String> {
        let window = Window::from_parts(self.window.0, self.window.1).ok_or("bad window")?;
        let domain = DomainName::parse(&self.domain).map_err(|e| e.to_string())?;
        let mut policy = ReportPolicy::none(&domain);
        policy.policy_type = self.policy_type;
        policy.policy_string.clone_from(&self.policy_string);
        policy.mx_host.clone_from(&self.mx_host);
        let failure = match &self.failure {
            None => None,
            Some(f) => {
                let result_type: ResultType =
                    f.result_type.parse().map_err(|_| format!("result type {:?}", f.result_type))?;
                let mut detail = FailureDetail::new(result_type, None).with_ips(f.sending_mta_ip, f.receiving_ip);
                detail.receiving_mx_hostname.clone_from(&f.receiving_mx_hostname);
                detail.receiving_mx_helo.clone_from(&f.receiving_mx_helo);
                detail.additional_information.clone_from(&f.additional_information);
                detail.failure_reason_code.clone_from(&f.failure_reason_code);
                Some(detail)
            }
        };
        Ok(Increment { window, policy, failure, count: self.count })
    }
}
