//! TLS-RPT (RFC 8460): the aggregate report against the RFC's own example
//! (§4.4), and the report file name (§5.3).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::{
    Aggregator, FailureDetail, ReportMeta, ReportPolicy, ResultType, TlsRptRecord, report_filename,
};
use smtp_tls_policy::sts::Policy;

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

/// The example report of RFC 8460 §4.4, rebuilt session by session.
#[test]
fn rfc8460_4_4_example_report() {
    let domain = name("company-y.example");
    let policy =
        Policy::parse("version: STSv1\nmode: testing\nmx: *.mail.company-y.example\nmax_age: 86400\n").unwrap();
    let sts = ReportPolicy::sts(&domain, &policy);
    let mut agg = Aggregator::new();
    for _ in 0..5326 {
        agg.record_success(&sts);
    }
    let expired = FailureDetail::new(ResultType::CertificateExpired, Some(&name("mx1.mail.company-y.example")))
        .with_ips(Some("2001:db8:abcd:0012::1".parse().unwrap()), None);
    let mut starttls = FailureDetail::new(ResultType::StarttlsNotSupported, Some(&name("mx2.mail.company-y.example")))
        .with_ips(Some("2001:db8:abcd:0013::1".parse().unwrap()), Some("203.0.113.56".parse().unwrap()));
    starttls.additional_information =
        Some("https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported".into());
    let validation = FailureDetail::new(ResultType::ValidationFailure, Some(&name("mx-backup.mail.company-y.example")))
        .with_ips(Some("198.51.100.62".parse().unwrap()), Some("203.0.113.58".parse().unwrap()))
        .with_reason_code("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
    for (detail, n) in [(expired, 100), (starttls, 200), (validation, 3)] {
        for _ in 0..n {
            agg.record_failure(&sts, detail.clone());
        }
    }
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_459_468_800);
    let meta = ReportMeta::new(
        "Company-X",
        "sts-reporting@company-x.example",
        "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
        start,
        start + Duration::from_secs(86_399),
    );
    let mut got = agg.report(&domain, &meta);
    let mut want = json!({
      "organization-name": "Company-X",
      "date-range": {
        "start-datetime": "2016-04-01T00:00:00Z",
        "end-datetime": "2016-04-01T23:59:59Z"
      },
      "contact-info": "sts-reporting@company-x.example",
      "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
      "policies": [{
        "policy": {
          "policy-type": "sts",
          "policy-string": ["version: STSv1", "mode: testing",
                "mx: *.mail.company-y.example", "max_age: 86400"],
          "policy-domain": "company-y.example",
          "mx-host": ["*.mail.company-y.example"]
        },
        "summary": {
          "total-successful-session-count": 5326,
          "total-failure-session-count": 303
        },
        "failure-details": [{
          "result-type": "certificate-expired",
          "sending-mta-ip": "2001:db8:abcd:12::1",
          "receiving-mx-hostname": "mx1.mail.company-y.example",
          "failed-session-count": 100
        }, {
          "result-type": "starttls-not-supported",
          "sending-mta-ip": "2001:db8:abcd:13::1",
          "receiving-mx-hostname": "mx2.mail.company-y.example",
          "receiving-ip": "203.0.113.56",
          "failed-session-count": 200,
          "additional-information": "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
        }, {
          "result-type": "validation-failure",
          "sending-mta-ip": "198.51.100.62",
          "receiving-ip": "203.0.113.58",
          "receiving-mx-hostname": "mx-backup.mail.company-y.example",
          "failed-session-count": 3,
          "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
        }]
      }]
    });
    // The RFC's IPv6 addresses carry leading zeros ("0012"); a report
    // writes the canonical form. Failure details are a set: sort both.
    for v in [&mut got, &mut want] {
        let details = v["policies"][0]["failure-details"].as_array_mut().unwrap();
        details.sort_by_key(|d| d["result-type"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(got, want);
    assert_eq!(agg.totals(&domain), (5326, 303));
    assert_eq!(agg.domains(), [domain]);
    // It serializes as JSON text that parses back equal.
    let text = serde_json::to_string_pretty(&got).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), got);
}

/// RFC 8460 §4.4: TLSA and no-policy-found policies, one report per domain.
#[test]
fn tlsa_and_no_policy_found() {
    let mut agg = Aggregator::new();
    let d = name("dane.example");
    let record: smtp_tls_policy::dane::TlsaRecord =
        "3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".parse().unwrap();
    let tlsa = ReportPolicy::tlsa(&d, &[record]);
    agg.record_success(&tlsa);
    agg.record_failure(&tlsa, FailureDetail::new(ResultType::TlsaInvalid, Some(&name("mx.dane.example"))));
    let other = name("plain.example");
    agg.record_success(&ReportPolicy::none(&other));
    let start = SystemTime::UNIX_EPOCH;
    let meta = ReportMeta::new("Org", "mailto:tlsrpt@org.example", "r1", start, start);
    let report = agg.report(&d, &meta);
    assert_eq!(report["policies"].as_array().unwrap().len(), 1);
    assert_eq!(report["policies"][0]["policy"]["policy-type"], "tlsa");
    assert_eq!(
        report["policies"][0]["policy"]["policy-string"][0],
        "3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    );
    assert!(report["policies"][0]["policy"].get("mx-host").is_none());
    // Policies of several domains, in any order: each domain once.
    agg.record_success(&ReportPolicy::none(&d));
    assert_eq!(agg.domains(), [d.clone(), other.clone()]);
    assert_eq!(agg.totals(&d), (2, 1));
    let none = agg.report(&other, &meta);
    assert_eq!(
        none["policies"][0]["policy"],
        json!({"policy-type": "no-policy-found", "policy-domain": "plain.example"})
    );
    assert!(none["policies"][0].get("failure-details").is_none());
}

/// RFC 8460 §5.3: the report file name.
#[test]
fn rfc8460_5_3_filename() {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_470_013_207);
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_470_186_007);
    let (sender, domain) = (name("mail.sender.example"), name("recipient.example"));
    assert_eq!(
        report_filename(&sender, &domain, start, end, None, false),
        "mail.sender.example!recipient.example!1470013207!1470186007.json"
    );
}

/// RFC 8460 §3: the record where reports go.
#[test]
fn rfc8460_3_record() {
    let r: TlsRptRecord = "v=TLSRPTv1; rua=mailto:reports@example.com".parse().unwrap();
    assert_eq!(r.rua()[0].as_str(), "mailto:reports@example.com");
}

/// The report is a typed value that a consumer reads back whole (RFC 8460
/// §4.4), unknown members (extensions) ignored.
#[test]
fn the_report_reads_back_as_a_typed_value() {
    use smtp_tls_policy::ResultType;
    use smtp_tls_policy::report::{AggregateReport, FailureDetail, PolicyType, ReportPolicy, Session};
    let domain = name("company-y.example");
    let policy =
        Policy::parse("version: STSv1\nmode: testing\nmx: *.mail.company-y.example\nmax_age: 86400\n").unwrap();
    let mx = name("mx1.mail.company-y.example");
    let mut agg = Aggregator::new();
    let sessions = [
        Session::success(ReportPolicy::sts(&domain, &policy)),
        Session::failure(
            ReportPolicy::sts(&domain, &policy),
            FailureDetail::new(ResultType::CertificateExpired, Some(&mx))
                .with_ips(Some("203.0.113.56".parse().unwrap()), Some("2001:db8::25".parse().unwrap())),
        ),
        Session::failure(ReportPolicy::tlsa(&domain, &[]), FailureDetail::new(ResultType::DnssecInvalid, None)),
    ];
    sessions.iter().for_each(|s| agg.record(s));
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_459_468_800);
    let meta = ReportMeta::new(
        "Company-X",
        "sts-reporting@company-x.example",
        "5065427c",
        start,
        start + Duration::from_secs(86_399),
    );
    let report = agg.aggregate(&domain, &meta);
    let text = serde_json::to_string(&report).unwrap();
    let back: AggregateReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
    assert_eq!(serde_json::to_value(&report).unwrap(), agg.report(&domain, &meta));
    let sts = back.policies.iter().find(|p| p.policy.policy_type == PolicyType::Sts).unwrap();
    assert_eq!((sts.summary.total_successful_session_count, sts.summary.total_failure_session_count), (1, 1));
    assert_eq!(sts.failure_details[0].result_type, ResultType::CertificateExpired);
    assert_eq!(sts.failure_details[0].receiving_ip, Some("2001:db8::25".parse().unwrap()));
    // Extensions and members this crate does not write are ignored.
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["x-extension"] = json!({"anything": 1});
    value["policies"][0]["policy"]["x-more"] = json!("ignored");
    let read: AggregateReport = serde_json::from_value(value).unwrap();
    assert_eq!(read, report);
    // An unknown result type is an error, not a silent default.
    let bad = text.replace("certificate-expired", "certificate-fine");
    assert!(serde_json::from_str::<AggregateReport>(&bad).is_err());
}
