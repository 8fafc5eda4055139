//! Service cluster IPs and node ports, allocated in the datastore.
//!
//! Each allocation is its own key (`/registry/k3rs/ipallocations/<ip>`,
//! `/registry/k3rs/nodeports/<port>`) created with the store's create-if-absent, so two
//! requests (or two API servers sharing the datastore) can never hand out the same value.
//! The value names the owning Service (namespace, name, uid). A request that allocated
//! and then failed releases its keys; [`repair`] cleans up after crashes, at startup and
//! every few minutes.
//!
//! Like upstream (KEP-3070, KEP-3668), random allocation prefers the upper part of each
//! range and leaves a lower band for values clients ask for (CoreDNS's `10.43.0.10`).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use k3rs_core::ResourceDef;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fields::{self, Path};
use super::services;
use crate::error::{ApiError, ApiResult};
use crate::{object, AppState};

pub const IP_PREFIX: &str = "/registry/k3rs/ipallocations/";
pub const PORT_PREFIX: &str = "/registry/k3rs/nodeports/";

/// How many random picks before listing what is taken.
const RANDOM_TRIES: usize = 32;
/// Keys younger than this are never reclaimed by repair: their Service may still be on
/// its way into the store.
const REPAIR_GRACE_SECONDS: i64 = 60;

/// The Service an allocation key belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    #[serde(default)]
    pub created: String,
}

impl Owner {
    fn of(obj: &Value) -> Owner {
        let text = |f: &str| object::meta_str(obj, f).unwrap_or_default().to_string();
        Owner {
            namespace: text("namespace"),
            name: text("name"),
            uid: text("uid"),
            created: object::now_rfc3339(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("owners always serialize")
    }
}

fn decode_owner(value: &[u8]) -> Option<Owner> {
    serde_json::from_slice(value).ok()
}

/// A range of allocatable values as offsets `first..=last` from `base`; random picks
/// start above `first + band`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    first: u128,
    last: u128,
    band: u128,
}

impl Range {
    fn new(first: u128, last: u128, band: u128) -> Range {
        Range { first, last, band }
    }

    fn contains(&self, offset: u128) -> bool {
        (self.first..=self.last).contains(&offset)
    }

    fn size(&self) -> u128 {
        self.last.saturating_sub(self.first) + 1
    }

    /// Where random allocation starts (the whole range when the upper part is empty).
    fn dynamic_first(&self) -> u128 {
        let start = self.first + self.band;
        if start <= self.last {
            start
        } else {
            self.first
        }
    }
}

/// Upstream's static band: `min(max(min_band, size / divisor), max_band)`.
fn band(size: u128, divisor: u128, min_band: u128, max_band: u128) -> u128 {
    (size / divisor).clamp(min_band, max_band)
}

/// Offsets of a service CIDR: never the network address, nor the IPv4 broadcast address.
fn ip_range(net: &IpNet) -> Range {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len()).min(64);
    let size: u128 = 1u128 << host_bits;
    let last = match net {
        IpNet::V4(_) => size.saturating_sub(2),
        IpNet::V6(_) => size - 1,
    };
    let first = 1.min(last);
    Range::new(first, last, band(size, 16, 16, 256))
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn ip_offset(net: &IpNet, ip: IpAddr) -> Option<u128> {
    if !net.contains(&ip) {
        return None;
    }
    Some(ip_to_u128(ip) - ip_to_u128(net.network()))
}

fn ip_at(net: &IpNet, offset: u128) -> IpAddr {
    k3rs_core::cluster::nth_address(net, offset)
}

fn port_range(range: &std::ops::RangeInclusive<u16>) -> Range {
    let (first, last) = (u128::from(*range.start()), u128::from(*range.end()));
    Range::new(first, last, band(last - first + 1, 32, 16, 128))
}

/// What creating an allocation key found.
enum Reserve {
    Created,
    /// The key already names this Service.
    Ours,
    Taken,
}

/// Keys one write has allocated, and keys it makes obsolete. Exactly one of
/// [`Reservation::commit`] (the write happened) or [`Reservation::release`] (it did not)
/// must follow.
#[must_use = "commit or release the allocations"]
pub struct Reservation {
    owner: Owner,
    dry_run: bool,
    acquired: Vec<String>,
    superseded: Vec<String>,
}

impl Reservation {
    fn new(owner: Owner, dry_run: bool) -> Self {
        Reservation {
            owner,
            dry_run,
            acquired: Vec::new(),
            superseded: Vec::new(),
        }
    }

    pub fn none() -> Self {
        Self::new(
            Owner {
                namespace: String::new(),
                name: String::new(),
                uid: String::new(),
                created: String::new(),
            },
            true,
        )
    }

    async fn reserve(&mut self, state: &AppState, key: String) -> ApiResult<Reserve> {
        let backend = state.store.backend();
        if self.dry_run {
            return Ok(match backend.get(&key).await? {
                None => Reserve::Created,
                Some(kv) if owned_by(&kv.value, &self.owner.uid) => Reserve::Ours,
                Some(_) => Reserve::Taken,
            });
        }
        match backend.create(&key, self.owner.encode()).await {
            Ok(_) => {
                self.acquired.push(key);
                Ok(Reserve::Created)
            }
            Err(k3rs_store::Error::AlreadyExists { .. }) => match backend.get(&key).await? {
                Some(kv) if owned_by(&kv.value, &self.owner.uid) => Ok(Reserve::Ours),
                _ => Ok(Reserve::Taken),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The write was stored: drop the allocations it no longer uses.
    pub async fn commit(self, state: &AppState) {
        for key in &self.superseded {
            release_key(state, key, &self.owner.uid).await;
        }
    }

    /// The write did not happen: give back what it allocated.
    pub async fn release(self, state: &AppState) {
        for key in &self.acquired {
            release_key(state, key, &self.owner.uid).await;
        }
    }
}

fn owned_by(value: &[u8], uid: &str) -> bool {
    decode_owner(value).is_some_and(|o| o.uid == uid)
}

/// Delete `key` if it still belongs to `uid`. Failures are logged: repair catches up.
async fn release_key(state: &AppState, key: &str, uid: &str) {
    let backend = state.store.backend();
    let result = async {
        match backend.get(key).await? {
            Some(kv) if owned_by(&kv.value, uid) => {
                backend.delete(key, Some(kv.mod_revision)).await.map(|_| ())
            }
            _ => Ok(()),
        }
    }
    .await;
    match result {
        Ok(()) | Err(k3rs_store::Error::NotFound { .. } | k3rs_store::Error::Conflict { .. }) => {}
        Err(error) => tracing::warn!(key, %error, "cannot release service allocation"),
    }
}

fn ip_key(ip: IpAddr) -> String {
    format!("{IP_PREFIX}{ip}")
}

fn port_key(port: i64) -> String {
    format!("{PORT_PREFIX}{port}")
}

fn is_service(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.kind == "Service"
}

fn invalid_service(obj: &Value, path: &Path, value: &Value, detail: &str) -> ApiError {
    let name = object::name(obj).unwrap_or_default();
    ApiError::invalid("Service", name, vec![fields::invalid(path, value, detail)])
}

/// Allocate what a new Service needs, writing `spec.clusterIP(s)` and node ports into
/// `obj`. With `dry_run` nothing is recorded, but requested values are still checked.
pub async fn on_create(
    state: &AppState,
    def: &ResourceDef,
    obj: &mut Value,
    dry_run: bool,
) -> ApiResult<Reservation> {
    if !is_service(def) {
        return Ok(Reservation::none());
    }
    let mut reservation = Reservation::new(Owner::of(obj), dry_run);
    match allocate(state, None, obj, &mut reservation).await {
        Ok(()) => Ok(reservation),
        Err(e) => {
            reservation.release(state).await;
            Err(e)
        }
    }
}

/// Allocate what an updated Service newly needs (a type change, a new port) and note the
/// allocations it gives up, released on [`Reservation::commit`].
pub async fn on_update(
    state: &AppState,
    def: &ResourceDef,
    old: &Value,
    new: &mut Value,
    dry_run: bool,
) -> ApiResult<Reservation> {
    if !is_service(def) {
        return Ok(Reservation::none());
    }
    let mut reservation = Reservation::new(Owner::of(old), dry_run);
    match allocate(state, Some(old), new, &mut reservation).await {
        Ok(()) => {
            let kept = keys_of(state, new);
            reservation.superseded = keys_of(state, old)
                .into_iter()
                .filter(|k| !kept.contains(k))
                .collect();
            Ok(reservation)
        }
        Err(e) => {
            reservation.release(state).await;
            Err(e)
        }
    }
}

/// Give back everything a deleted Service held.
pub async fn on_delete(state: &AppState, def: &ResourceDef, obj: &Value) {
    if !is_service(def) {
        return;
    }
    let uid = object::meta_str(obj, "uid").unwrap_or_default();
    for key in keys_of(state, obj) {
        release_key(state, &key, uid).await;
    }
}

/// The allocation keys a stored Service should hold.
fn keys_of(state: &AppState, obj: &Value) -> HashSet<String> {
    let mut keys = HashSet::new();
    if services::needs_cluster_ip(obj) {
        let cidr = &state.config.cluster.service_cidr;
        let ips = obj
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for ip in ips.iter().filter_map(Value::as_str) {
            if let Ok(ip) = ip.parse::<IpAddr>() {
                if ip_offset(cidr, ip).is_some() {
                    keys.insert(ip_key(ip));
                }
            }
        }
    }
    if services::needs_node_ports(obj) {
        let range = &state.config.cluster.node_port_range;
        for (_, port) in services::node_ports(obj) {
            if u16::try_from(port).is_ok_and(|p| range.contains(&p)) {
                keys.insert(port_key(port));
            }
        }
    }
    keys
}

async fn allocate(
    state: &AppState,
    old: Option<&Value>,
    obj: &mut Value,
    reservation: &mut Reservation,
) -> ApiResult<()> {
    if services::needs_cluster_ip(obj) && !services::is_headless(obj) {
        allocate_cluster_ip(state, old, obj, reservation).await?;
    }
    if services::needs_node_ports(obj) {
        allocate_node_ports(state, old, obj, reservation).await?;
    }
    Ok(())
}

async fn allocate_cluster_ip(
    state: &AppState,
    old: Option<&Value>,
    obj: &mut Value,
    reservation: &mut Reservation,
) -> ApiResult<()> {
    let cidr = state.config.cluster.service_cidr;
    let range = ip_range(&cidr);
    let path = Path::new("spec").child("clusterIPs");
    let ip = match services::cluster_ip(obj).map(str::to_string) {
        // Unchanged on update: already held.
        Some(ip) if old.and_then(services::cluster_ip) == Some(ip.as_str()) => return Ok(()),
        Some(requested) => {
            let ips = obj
                .pointer("/spec/clusterIPs")
                .cloned()
                .unwrap_or(json!([]));
            let parsed: IpAddr = requested.parse().map_err(|_| {
                invalid_service(
                    obj,
                    &path.index(0),
                    &json!(requested),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )
            })?;
            if !ip_offset(&cidr, parsed).is_some_and(|o| range.contains(o)) {
                return Err(invalid_service(
                    obj,
                    &path,
                    &ips,
                    &format!(
                        "failed to allocate IP {parsed}: the provided IP ({parsed}) is not in the valid range. The range of valid IPs is {cidr}"
                    ),
                ));
            }
            match reservation.reserve(state, ip_key(parsed)).await? {
                Reserve::Created | Reserve::Ours => parsed,
                Reserve::Taken => {
                    return Err(invalid_service(
                        obj,
                        &path,
                        &ips,
                        &format!(
                            "failed to allocate IP {parsed}: provided IP is already allocated"
                        ),
                    ))
                }
            }
        }
        None => {
            let picked = pick(state, reservation, range, &HashSet::new(), IP_PREFIX, |o| {
                ip_key(ip_at(&cidr, o))
            })
            .await?;
            match picked {
                Some(offset) => ip_at(&cidr, offset),
                None => {
                    return Err(ApiError::internal(
                        "failed to allocate a serviceIP: range is full",
                    ))
                }
            }
        }
    };
    let spec = object_mut(obj, "spec");
    spec.insert("clusterIP".into(), json!(ip.to_string()));
    spec.insert("clusterIPs".into(), json!([ip.to_string()]));
    Ok(())
}

fn object_mut<'a>(obj: &'a mut Value, field: &str) -> &'a mut serde_json::Map<String, Value> {
    if !obj.get(field).is_some_and(Value::is_object) {
        obj[field] = json!({});
    }
    obj[field].as_object_mut().expect("made an object above")
}

async fn allocate_node_ports(
    state: &AppState,
    old: Option<&Value>,
    obj: &mut Value,
    reservation: &mut Reservation,
) -> ApiResult<()> {
    let configured = state.config.cluster.node_port_range.clone();
    let range = port_range(&configured);
    let held: HashSet<i64> = old
        .filter(|o| services::needs_node_ports(o))
        .map(|o| {
            services::node_ports(o)
                .into_iter()
                .map(|(_, p)| p)
                .collect()
        })
        .unwrap_or_default();
    // Requested ports first, so random picks avoid them.
    let mut in_use: HashSet<i64> = HashSet::new();
    for (i, port) in services::node_ports(obj) {
        if !in_use.insert(port) || held.contains(&port) {
            continue;
        }
        let path = Path::new("spec").child("ports").index(i).child("nodePort");
        if !u16::try_from(port).is_ok_and(|p| configured.contains(&p)) {
            return Err(invalid_service(
                obj,
                &path,
                &json!(port),
                &format!(
                    "provided port is not in the valid range. The range of valid ports is {}-{}",
                    configured.start(),
                    configured.end()
                ),
            ));
        }
        if let Reserve::Taken = reservation.reserve(state, port_key(port)).await? {
            return Err(invalid_service(
                obj,
                &path,
                &json!(port),
                "provided port is already allocated",
            ));
        }
    }
    if !services::allocates_node_ports(obj) {
        return Ok(());
    }
    // Ports sharing a port number (TCP and UDP 53) share a node port, as upstream.
    let mut by_service_port: HashMap<i64, i64> = services::node_ports(obj)
        .into_iter()
        .filter_map(|(i, n)| Some((obj["spec"]["ports"][i].get("port")?.as_i64()?, n)))
        .collect();
    let count = obj["spec"]["ports"].as_array().map_or(0, Vec::len);
    for i in 0..count {
        let port = &obj["spec"]["ports"][i];
        if port.get("nodePort").is_some() {
            continue;
        }
        let service_port = port.get("port").and_then(Value::as_i64).unwrap_or_default();
        let node_port = match by_service_port.get(&service_port) {
            Some(n) => *n,
            None => {
                let avoid: HashSet<u128> = in_use.iter().map(|p| *p as u128).collect();
                let picked = pick(state, reservation, range, &avoid, PORT_PREFIX, |p| {
                    port_key(p as i64)
                })
                .await?
                .ok_or_else(|| {
                    ApiError::internal("failed to allocate a nodePort: range is full")
                })?;
                picked as i64
            }
        };
        in_use.insert(node_port);
        by_service_port.insert(service_port, node_port);
        obj["spec"]["ports"][i]["nodePort"] = json!(node_port);
    }
    Ok(())
}

/// Reserve a random free value of `range` (upper part first), or `None` when full.
async fn pick(
    state: &AppState,
    reservation: &mut Reservation,
    range: Range,
    avoid: &HashSet<u128>,
    prefix: &str,
    key: impl Fn(u128) -> String,
) -> ApiResult<Option<u128>> {
    for lower in [range.dynamic_first(), range.first] {
        for _ in 0..RANDOM_TRIES {
            let candidate = rand::rng().random_range(lower..=range.last);
            if avoid.contains(&candidate) {
                continue;
            }
            if let Reserve::Created = reservation.reserve(state, key(candidate)).await? {
                return Ok(Some(candidate));
            }
        }
    }
    // Crowded: look at what is taken and try the free values in random order.
    if range.size() > 1 << 20 {
        return Ok(None);
    }
    let taken: HashSet<String> = state
        .store
        .backend()
        .list(k3rs_store::ListOptions {
            prefix,
            ..Default::default()
        })
        .await?
        .items
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    let free = |lo: u128| -> Vec<u128> {
        (lo..=range.last)
            .filter(|o| !avoid.contains(o) && !taken.contains(&key(*o)))
            .collect()
    };
    for mut candidates in [free(range.dynamic_first()), free(range.first)] {
        while !candidates.is_empty() {
            let i = rand::rng().random_range(0..candidates.len());
            let candidate = candidates.swap_remove(i);
            if let Reserve::Created = reservation.reserve(state, key(candidate)).await? {
                return Ok(Some(candidate));
            }
        }
    }
    Ok(None)
}

/// Make the allocation keys agree with the stored Services: record allocations that
/// have no key, and delete keys (older than a grace period) whose Service is gone.
pub async fn repair(state: &AppState) -> ApiResult<()> {
    let def = state.find("", "v1", "services").expect("built in");
    let backend = state.store.backend();
    let services = state.store.list(&def, None, None, None, None).await?.items;
    let mut wanted: HashMap<String, Owner> = HashMap::new();
    for svc in &services {
        let owner = Owner::of(svc);
        for key in keys_of(state, svc) {
            if let Some(other) = wanted.get(&key) {
                tracing::warn!(key, first = %format!("{}/{}", other.namespace, other.name), second = %format!("{}/{}", owner.namespace, owner.name), "allocated to more than one Service");
                continue;
            }
            wanted.insert(key, owner.clone());
        }
    }
    let mut existing = HashMap::new();
    for prefix in [IP_PREFIX, PORT_PREFIX] {
        let list = backend
            .list(k3rs_store::ListOptions {
                prefix,
                ..Default::default()
            })
            .await?;
        for kv in list.items {
            existing.insert(kv.key.clone(), kv);
        }
    }
    let now = chrono::Utc::now();
    for (key, kv) in &existing {
        let owner = decode_owner(&kv.value);
        let valid = owner
            .as_ref()
            .is_some_and(|o| wanted.get(key).is_some_and(|w| w.uid == o.uid));
        if valid {
            continue;
        }
        let young = owner
            .as_ref()
            .and_then(|o| chrono::DateTime::parse_from_rfc3339(&o.created).ok())
            .is_some_and(|t| {
                (now - t.with_timezone(&chrono::Utc)).num_seconds() < REPAIR_GRACE_SECONDS
            });
        if young {
            continue;
        }
        match wanted.get(key) {
            // Held by a Service, but recorded for another (gone) one: take it over.
            Some(owner) => {
                let _ = backend.update(key, owner.encode(), kv.mod_revision).await;
            }
            None => {
                tracing::info!(key, "releasing leaked service allocation");
                let _ = backend.delete(key, Some(kv.mod_revision)).await;
            }
        }
    }
    for (key, owner) in &wanted {
        if !existing.contains_key(key) {
            match backend.create(key, owner.encode()).await {
                Ok(_) => tracing::info!(key, "recorded missing service allocation"),
                Err(k3rs_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_skip_network_and_broadcast() {
        let net: IpNet = "10.43.0.0/16".parse().unwrap();
        let r = ip_range(&net);
        assert_eq!((r.first, r.last, r.band), (1, 65534, 256));
        assert_eq!(r.dynamic_first(), 257);
        assert_eq!(ip_at(&net, r.last).to_string(), "10.43.255.254");
        assert_eq!(ip_offset(&net, "10.43.0.10".parse().unwrap()), Some(10));
        assert_eq!(ip_offset(&net, "10.99.0.5".parse().unwrap()), None);
        let small: IpNet = "10.0.0.0/29".parse().unwrap();
        let r = ip_range(&small);
        assert_eq!((r.first, r.last), (1, 6));
        assert_eq!(r.dynamic_first(), 1);
        let v6: IpNet = "fd00::/112".parse().unwrap();
        assert_eq!(ip_range(&v6).last, 65535);

        let ports = port_range(&(30000..=32767));
        assert_eq!(ports.band, 86);
        assert_eq!(ports.dynamic_first(), 30086);
        assert_eq!(ports.size(), 2768);
    }

    #[test]
    fn owners_round_trip() {
        let svc = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u1"}});
        let owner = Owner::of(&svc);
        assert!(owned_by(&owner.encode(), "u1"));
        assert!(!owned_by(&owner.encode(), "u2"));
        assert!(!owned_by(b"junk", "u1"));
    }
}
