//! The local DNS world: one hickory-server on 127.0.0.1 serving a signed
//! root, a signed zone (`signed.`), an unsigned delegated zone (`plain.`)
//! and a zone whose DS does not match its key (`broken.`), with NSEC
//! denial. A second server on another port answers the same data with the
//! AD bit set, standing in for a validating resolver.
//!
//! A single catalog routes a query for `child. DS` to the child zone (the
//! longest match); the world routes DS queries at a zone cut to the parent
//! zone instead, as a recursive resolver would. Names with a `servfail`
//! label are answered SERVFAIL; names with a `timeout` label are never
//! answered.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, SigningKey};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::NetError;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, DnssecZoneHandler, MessageResponse, MessageResponseBuilder, ZoneHandler, ZoneType,
};

/// Zone text added to the world's zones.
#[derive(Default, Clone)]
pub struct Zones {
    /// Records of `signed.` (relative names allowed).
    pub signed: String,
    /// Records of `plain.`.
    pub plain: String,
    /// Records of `broken.`.
    pub broken: String,
}

/// The running world.
pub struct DnsWorld {
    /// The server answering like a validating resolver would, AD bit clear.
    pub addr: SocketAddr,
    /// The same data with the AD bit set on every answer.
    pub ad_addr: SocketAddr,
    /// The root key in zone-file form, for `TrustAnchor::parse`.
    pub root_anchor: String,
    zones: Vec<(Name, Arc<InMemoryZoneHandler<TokioRuntimeProvider>>, bool)>,
    runtime: tokio::runtime::Runtime,
}

struct Key {
    signing: EcdsaSigningKey,
    dnskey: DNSKEY,
}

fn key() -> Key {
    let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).unwrap();
    let signing = EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256).unwrap();
    let dnskey = DNSKEY::from_key(&signing.to_public_key().unwrap());
    Key { signing, dnskey }
}

fn ds(zone: &str, key: &Key) -> String {
    let name = Name::from_ascii(zone).unwrap();
    let digest = key.dnskey.to_digest(&name, DigestType::SHA256).unwrap();
    let tag = key.dnskey.calculate_key_tag().unwrap();
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("{zone} 300 IN DS {tag} 13 2 {hex}\n")
}

fn parse(origin: &Name, text: &str) -> BTreeMap<RrKey, RecordSet> {
    let (_, records) =
        Parser::new(text, None, Some(origin.clone())).parse().unwrap_or_else(|e| panic!("zone {origin}: {e}\n{text}"));
    records
}

fn zone(origin: &str, text: &str, key: Option<Key>) -> Arc<InMemoryZoneHandler<TokioRuntimeProvider>> {
    let origin = Name::from_ascii(origin).unwrap();
    let o = if origin.is_root() { String::new() } else { origin.to_string() };
    let head =
        format!("$ORIGIN {origin}\n$TTL 300\n@ IN SOA ns.{o} hostmaster.{o} 1 3600 600 86400 300\n@ IN NS ns.{o}\n");
    let records = parse(&origin, &format!("{head}{text}\n"));
    let proof = key.as_ref().map(|_| NxProofKind::Nsec);
    let mut handler: InMemoryZoneHandler<TokioRuntimeProvider> =
        InMemoryZoneHandler::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny, proof).unwrap();
    if let Some(key) = key {
        let signer =
            DnssecSigner::new(key.dnskey, Box::new(key.signing), origin.clone(), Duration::from_secs(7 * 86400));
        handler.add_zone_signing_key_mut(signer).unwrap();
        handler.secure_zone_mut().unwrap();
    }
    Arc::new(handler)
}

struct World {
    all: Catalog,
    /// One catalog per zone, for DS queries at that zone's cuts.
    by_zone: Vec<(LowerName, Catalog)>,
    cuts: Vec<LowerName>,
    set_ad: bool,
}

impl World {
    fn parent_of_cut(&self, name: &LowerName) -> Option<&Catalog> {
        if name.is_root() || !self.cuts.contains(name) {
            return None;
        }
        let parent = name.base_name();
        self.by_zone
            .iter()
            .filter(|(origin, _)| origin.zone_of(&parent))
            .max_by_key(|(origin, _)| origin.num_labels())
            .map(|(_, c)| c)
    }
}

#[derive(Clone)]
struct SetAd<R>(R);

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for SetAd<R> {
    async fn send_response<'a>(
        &mut self,
        mut response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        response.metadata_mut().authentic_data = true;
        self.0.send_response(response).await
    }
}

#[derive(Clone)]
struct Discard;

#[async_trait::async_trait]
impl ResponseHandler for Discard {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut bytes = Vec::new();
        Ok(response.destructive_emit(&mut BinEncoder::new(&mut bytes))?)
    }
}

#[async_trait::async_trait]
impl RequestHandler for World {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response: R) -> ResponseInfo {
        let Ok(info) = request.request_info() else { return self.all.handle_request::<R, T>(request, response).await };
        let name = info.query.name().clone();
        let labels: Vec<String> = name.to_string().split('.').map(str::to_ascii_lowercase).collect();
        if labels.iter().any(|l| l == "timeout") {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return self.all.handle_request::<Discard, T>(request, Discard).await;
        }
        if labels.iter().any(|l| l == "servfail") {
            let mut response = response;
            let msg = MessageResponseBuilder::new(&request.queries, None)
                .error_msg(&request.metadata, ResponseCode::ServFail);
            return response.send_response(msg).await.unwrap();
        }
        let catalog = match info.query.query_type() {
            RecordType::DS => self.parent_of_cut(&name).unwrap_or(&self.all),
            _ => &self.all,
        };
        if self.set_ad {
            catalog.handle_request::<SetAd<R>, T>(request, SetAd(response)).await
        } else {
            catalog.handle_request::<R, T>(request, response).await
        }
    }
}

impl DnsWorld {
    /// Starts the world with these extra records.
    pub fn start(zones: &Zones) -> Self {
        Self::start_on(zones, "127.0.0.1:0".parse().unwrap())
    }

    /// [`start`](Self::start) with the main server on a chosen address
    /// (e.g. port 53, for programs that read /etc/resolv.conf).
    pub fn start_on(zones: &Zones, main: SocketAddr) -> Self {
        let root_key = key();
        let signed_key = key();
        let broken_key = key();
        let broken_ds = key(); // published in the root, never signs anything
        let root_anchor =
            Record::from_rdata(Name::root(), 3600, RData::DNSSEC(DNSSECRData::DNSKEY(root_key.dnskey.clone())))
                .to_string();
        let root_text = format!(
            "ns.signed. IN A 127.0.0.1\nsigned. IN NS ns.signed.\n{}plain. IN NS ns.plain.\nns.plain. IN A 127.0.0.1\n\
             broken. IN NS ns.broken.\nns.broken. IN A 127.0.0.1\n{}",
            ds("signed.", &signed_key),
            ds("broken.", &broken_ds),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let zones = [
            (".", zone(".", &root_text, Some(root_key)), true),
            ("signed.", zone("signed.", &zones.signed, Some(signed_key)), true),
            ("plain.", zone("plain.", &zones.plain, None), false),
            ("broken.", zone("broken.", &zones.broken, Some(broken_key)), true),
        ];
        let (addr, ad_addr) = runtime.block_on(async {
            let world = |set_ad| {
                let mut all = Catalog::new();
                let mut by_zone = Vec::new();
                for (origin, handler, _) in &zones {
                    let origin = LowerName::from(Name::from_ascii(origin).unwrap());
                    let handler: Arc<dyn ZoneHandler> = Arc::clone(handler) as _;
                    all.upsert(origin.clone(), vec![Arc::clone(&handler)]);
                    let mut one = Catalog::new();
                    one.upsert(origin.clone(), vec![handler]);
                    by_zone.push((origin, one));
                }
                let cuts = by_zone.iter().map(|(o, _)| o.clone()).filter(|o| !o.is_root()).collect();
                World { all, by_zone, cuts, set_ad }
            };
            (serve(world(false), main).await, serve(world(true), "127.0.0.1:0".parse().unwrap()).await)
        });
        let zones = zones.into_iter().map(|(o, h, signed)| (Name::from_ascii(o).unwrap(), h, signed)).collect();
        Self { addr, ad_addr, root_anchor, zones, runtime }
    }

    /// Replaces, in zone `origin` (e.g. `signed.`), every RRset that
    /// `records` names with the records given, and signs the zone again.
    /// Use TTL 0 so that resolvers do not keep the old answer.
    pub fn replace(&self, origin: &str, records: &str) {
        self.edit(origin, records, true);
    }

    /// Removes, from zone `origin`, every RRset that `records` names.
    pub fn remove(&self, origin: &str, records: &str) {
        self.edit(origin, records, false);
    }

    /// Changes the data of RRsets of zone `origin` after signing, keeping
    /// their old RRSIGs: signatures that no longer verify (bogus).
    pub fn tamper(&self, origin: &str, records: &str) {
        let origin = Name::from_ascii(origin).unwrap();
        let (_, zone, _) = self.zones.iter().find(|(o, _, _)| *o == origin).expect("a zone of the world");
        let parsed = parse(&origin, &format!("$ORIGIN {origin}\n{records}\n"));
        self.runtime.block_on(async {
            let mut all = zone.records_mut().await;
            for (key, set) in parsed {
                let old = all.get(&key).expect("tamper with an existing, signed RRset");
                let mut changed = (**old).clone();
                changed.set_records(set.records_without_rrsigs().cloned().collect());
                all.insert(key, Arc::new(changed));
            }
        });
    }

    fn edit(&self, origin: &str, records: &str, insert: bool) {
        let origin = Name::from_ascii(origin).unwrap();
        let (_, zone, signed) = self.zones.iter().find(|(o, _, _)| *o == origin).expect("a zone of the world");
        let parsed = parse(&origin, &format!("$ORIGIN {origin}\n{records}\n"));
        self.runtime.block_on(async {
            {
                let mut all = zone.records_mut().await;
                for key in parsed.keys() {
                    all.remove(key);
                }
            }
            if insert {
                let serial = zone.serial().await + 1;
                for set in parsed.values() {
                    for record in set.records_without_rrsigs() {
                        zone.upsert(record.clone(), serial).await;
                    }
                }
            }
            if *signed {
                zone.secure_zone().await.unwrap();
            }
        });
    }
}

/// Serves `world` on UDP and TCP on `at` (port 0: one free port).
async fn serve(world: World, at: SocketAddr) -> SocketAddr {
    let mut server = Server::new(world);
    loop {
        let udp = tokio::net::UdpSocket::bind(at).await.unwrap();
        let addr = udp.local_addr().unwrap();
        let Ok(tcp) = tokio::net::TcpListener::bind(addr).await else {
            assert_eq!(at.port(), 0, "cannot bind TCP {addr}");
            continue;
        };
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65535);
        // The server runs as long as the runtime.
        tokio::spawn(async move { server.block_until_done().await });
        return addr;
    }
}
