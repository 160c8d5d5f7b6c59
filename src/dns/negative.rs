//! Authenticated denial of existence (RFC 4035 §5.4 for NSEC, RFC 5155 §8
//! for NSEC3): what verified NSEC and NSEC3 records prove of a name and
//! type. Pure functions over records whose signatures were checked.

use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::{NSEC, NSEC3};
use hickory_proto::rr::{Name, RecordType};

use super::validate::MAX_NSEC3_ITERATIONS;

/// What the NSEC or NSEC3 records prove of a denial.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Denial {
    /// Proven; for DS, `delegation` says the name is an unsigned delegation.
    Proven { delegation: bool },
    /// RFC 5155 §6, §8.4, §8.6: an opt-out span covers the name: insecure.
    OptOut,
    /// Parameters this crate does not check (an unknown hash, too many
    /// iterations): insecure (RFC 9276 §3.2).
    Insecure,
    /// No proof.
    Missing,
}

/// `name` falls strictly between `owner` and `next` (RFC 4034 §4.1.1), the
/// last NSEC of a zone wrapping to its apex.
pub(super) fn covers(owner: &Name, next: &NSEC, name: &Name) -> bool {
    let next = next.next_domain_name();
    if owner < next { owner < name && name < next } else { owner < name || name < next }
}

/// The longest ancestor `name` shares with `owner` or `next` (RFC 4035
/// §5.4).
pub(super) fn closest_encloser(name: &Name, owner: &Name, next: &NSEC) -> Name {
    let common = |other: &Name| {
        (0..=name.num_labels())
            .rev()
            .map(|n| name.trim_to(usize::from(n)))
            .find(|a| a.zone_of(other))
            .unwrap_or_else(Name::root)
    };
    let a = common(owner);
    let b = common(next.next_domain_name());
    if a.num_labels() >= b.num_labels() { a } else { b }
}

/// The type bitmap denies `qtype` at a name that exists (RFC 4035 §5.4):
/// neither the type nor a CNAME; an NSEC at a delegation (NS without SOA)
/// speaks only for DS there (RFC 4035 §2.3, RFC 6840 §4.1).
pub(super) fn denies(types: &hickory_proto::rr::RecordTypeSet, qtype: RecordType) -> bool {
    let delegation = types.contains(RecordType::NS) && !types.contains(RecordType::SOA);
    !types.contains(qtype) && !types.contains(RecordType::CNAME) && (qtype == RecordType::DS || !delegation)
}

pub(super) fn is_delegation(types: &hickory_proto::rr::RecordTypeSet) -> bool {
    types.contains(RecordType::NS) && !types.contains(RecordType::SOA)
}

pub(super) fn nsec_denial(nsecs: &[(Name, NSEC)], qname: &Name, qtype: RecordType, nx: bool) -> Denial {
    if !nx {
        // NODATA: the NSEC at the name itself.
        if let Some((_, n)) = nsecs.iter().find(|(o, _)| o == qname) {
            return if denies(n.type_set(), qtype) {
                Denial::Proven { delegation: is_delegation(n.type_set()) }
            } else {
                Denial::Missing
            };
        }
        // An empty non-terminal: an NSEC covering it whose next name is below it.
        if nsecs.iter().any(|(o, n)| covers(o, n, qname) && qname.zone_of(n.next_domain_name())) {
            return Denial::Proven { delegation: false };
        }
    }
    // NXDOMAIN, or NODATA from a wildcard: the name is covered; the closest
    // encloser's wildcard is covered (NXDOMAIN) or exists without the type.
    let Some((o, n)) = nsecs.iter().find(|(o, n)| covers(o, n, qname)) else { return Denial::Missing };
    let encloser = closest_encloser(qname, o, n);
    let Ok(wildcard) = encloser.prepend_label("*") else { return Denial::Missing };
    if nx {
        if nsecs.iter().any(|(o, n)| covers(o, n, &wildcard)) {
            Denial::Proven { delegation: false }
        } else {
            Denial::Missing
        }
    } else {
        match nsecs.iter().find(|(o, _)| *o == wildcard) {
            Some((_, n)) if denies(n.type_set(), qtype) => Denial::Proven { delegation: false },
            _ => Denial::Missing,
        }
    }
}

pub(super) struct Nsec3Params {
    salt: Vec<u8>,
    pub(super) iterations: u16,
}

pub(super) fn nsec3_params(records: &[(Name, NSEC3)]) -> Option<Nsec3Params> {
    let (_, first) = records.first()?;
    if first.hash_algorithm() != Nsec3HashAlgorithm::SHA1 {
        return None;
    }
    Some(Nsec3Params { salt: first.salt().to_vec(), iterations: first.iterations() })
}

pub(super) fn nsec3_hash(name: &Name, params: &Nsec3Params) -> Option<Vec<u8>> {
    Nsec3HashAlgorithm::SHA1
        .hash(&params.salt, &name.to_lowercase(), params.iterations)
        .ok()
        .map(|d| d.as_ref().to_vec())
}

/// The hash in an NSEC3 owner name's first label (base32hex, RFC 5155 §3.3).
pub(super) fn owner_hash(owner: &Name) -> Option<Vec<u8>> {
    let label = owner.iter().next()?;
    data_encoding::BASE32HEX_NOPAD.decode(&label.to_ascii_uppercase()).ok()
}

pub(super) fn same_params(n: &NSEC3, params: &Nsec3Params) -> bool {
    n.hash_algorithm() == Nsec3HashAlgorithm::SHA1
        && n.iterations() == params.iterations
        && n.salt() == params.salt.as_slice()
}

pub(super) fn matching_nsec3<'a>(
    records: &'a [(Name, NSEC3)],
    params: &Nsec3Params,
    name: &Name,
    zone: &Name,
) -> Option<&'a NSEC3> {
    let hash = nsec3_hash(name, params)?;
    records
        .iter()
        .find(|(o, n)| same_params(n, params) && o.base_name() == *zone && owner_hash(o).as_deref() == Some(&hash[..]))
        .map(|(_, n)| n)
}

pub(super) fn covering_nsec3<'a>(
    records: &'a [(Name, NSEC3)],
    params: &Nsec3Params,
    name: &Name,
    zone: &Name,
) -> Option<&'a NSEC3> {
    let hash = nsec3_hash(name, params)?;
    records
        .iter()
        .find(|(o, n)| {
            let Some(owner) = owner_hash(o) else { return false };
            let next = n.next_hashed_owner_name();
            same_params(n, params)
                && o.base_name() == *zone
                && if owner.as_slice() < next {
                    owner < hash && hash.as_slice() < next
                } else {
                    owner < hash || hash.as_slice() < next
                }
        })
        .map(|(_, n)| n)
}

/// RFC 5155 §8.3: the closest encloser of `qname` (an ancestor with a
/// matching NSEC3) and the NSEC3 covering the next closer name.
pub(super) fn closest_encloser_proof<'a>(
    records: &'a [(Name, NSEC3)],
    params: &Nsec3Params,
    qname: &Name,
    zone: &Name,
) -> Option<(Name, &'a NSEC3)> {
    let (top, bottom) = (zone.num_labels(), qname.num_labels());
    for labels in (top..bottom).rev() {
        let candidate = qname.trim_to(usize::from(labels));
        if let Some(encloser) = matching_nsec3(records, params, &candidate, zone) {
            // A delegation or a DNAME above the name is not its closest encloser.
            if is_delegation(encloser.type_set()) && candidate != *zone {
                return None;
            }
            let next_closer = qname.trim_to(usize::from(labels) + 1);
            return covering_nsec3(records, params, &next_closer, zone).map(|c| (candidate, c));
        }
    }
    None
}

pub(super) fn nsec3_denial(
    records: &[(Name, NSEC3)],
    zone: &Name,
    qname: &Name,
    qtype: RecordType,
    nx: bool,
) -> Denial {
    let Some(params) = nsec3_params(records) else { return Denial::Insecure };
    if params.iterations > MAX_NSEC3_ITERATIONS {
        return Denial::Insecure;
    }
    if !nx && let Some(n) = matching_nsec3(records, &params, qname, zone) {
        return if denies(n.type_set(), qtype) {
            Denial::Proven { delegation: is_delegation(n.type_set()) }
        } else {
            Denial::Missing
        };
    }
    let Some((encloser, next_closer)) = closest_encloser_proof(records, &params, qname, zone) else {
        return Denial::Missing;
    };
    // RFC 5155 §8.6 (DS), §9.2: a next closer name in an opt-out span may
    // be an unsigned delegation, so nothing below the closest encloser is
    // proven; the answer is insecure.
    if next_closer.opt_out() {
        return Denial::OptOut;
    }
    let Ok(wildcard) = encloser.prepend_label("*") else { return Denial::Missing };
    if nx {
        if covering_nsec3(records, &params, &wildcard, zone).is_none() {
            return Denial::Missing;
        }
        Denial::Proven { delegation: false }
    } else {
        // RFC 5155 §8.7: NODATA from a wildcard.
        match matching_nsec3(records, &params, &wildcard, zone) {
            Some(n) if denies(n.type_set(), qtype) => Denial::Proven { delegation: false },
            _ => Denial::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    #[test]
    fn rfc4034_4_1_nsec_coverage_wraps_at_the_apex() {
        let nsec = |next: &str| NSEC::new(name(next), [RecordType::A]);
        for (owner, next, n, covered) in [
            ("a.example.", "c.example.", "b.example.", true),
            ("a.example.", "c.example.", "a.example.", false),
            ("a.example.", "c.example.", "c.example.", false),
            ("a.example.", "c.example.", "x.b.example.", true),
            ("z.example.", "example.", "zz.example.", true),
            ("z.example.", "example.", "b.example.", false),
        ] {
            assert_eq!(covers(&name(owner), &nsec(next), &name(n)), covered, "{owner} {next} {n}");
        }
    }

    #[test]
    fn rfc4035_5_4_nsec_denials() {
        let n = |owner: &str, next: &str, types: &[RecordType]| {
            (name(owner), hickory_proto::dnssec::rdata::NSEC::new(name(next), types.to_vec()))
        };
        use RecordType::*;
        let zone = [
            n("example.", "a.example.", &[SOA, NS, MX]),
            n("a.example.", "c.example.", &[A, TXT]),
            n("c.example.", "example.", &[A]),
        ];
        let proven = Denial::Proven { delegation: false };
        // NODATA at a name.
        assert_eq!(nsec_denial(&zone, &name("a.example."), MX, false), proven);
        assert_eq!(nsec_denial(&zone, &name("a.example."), A, false), Denial::Missing);
        // NXDOMAIN needs the wildcard covered too: *.example. sorts before a.example.
        assert_eq!(nsec_denial(&zone[1..], &name("b.example."), A, true), Denial::Missing);
        assert_eq!(nsec_denial(&zone, &name("b.example."), A, true), proven);
        // A delegation's NSEC denies DS only, and says it is a delegation.
        let cut = [n("d.example.", "e.example.", &[NS])];
        assert_eq!(nsec_denial(&cut, &name("d.example."), DS, false), Denial::Proven { delegation: true });
        assert_eq!(nsec_denial(&cut, &name("d.example."), A, false), Denial::Missing);
        // An empty non-terminal.
        let ent = [n("a.example.", "x.b.example.", &[A])];
        assert_eq!(nsec_denial(&ent, &name("b.example."), DS, false), proven);
    }
}
