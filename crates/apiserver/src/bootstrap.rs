//! Objects every cluster has from its first start: the system namespaces and the
//! `kubernetes` Service with endpoints pointing at this API server. Like upstream's
//! bootstrap controller, this runs inside the API server against its own store.

use k3rs_core::ResourceDef;
use serde_json::{json, Value};

use crate::admission::{self, allocator};
use crate::error::ApiResult;
use crate::query::Params;
use crate::AppState;

const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Create `obj` of `plural` in `ns` unless an object of that name exists.
async fn ensure(
    state: &AppState,
    group_version: (&str, &str),
    plural: &str,
    ns: Option<&str>,
    obj: Value,
) -> ApiResult<()> {
    let def = state
        .find(group_version.0, group_version.1, plural)
        .expect("bootstrap kinds are built in");
    ensure_object(state, &def, ns, obj).await.map(|_| ())
}

/// Create `obj` through admission (defaults, allocations) unless an object of that name
/// exists; `true` when this call created it. Every server-made default object goes
/// through here, so several servers sharing a datastore never fight over them.
pub async fn ensure_object(
    state: &AppState,
    def: &ResourceDef,
    ns: Option<&str>,
    mut obj: Value,
) -> ApiResult<bool> {
    let name = crate::object::name(&obj).unwrap_or_default().to_string();
    if state.store.get(def, ns, &name).await?.is_some() {
        return Ok(false);
    }
    admission::prepare_create(def, ns, &mut obj, &Params::parse(None)?)?;
    // The `kubernetes` Service's IP is recorded like any other Service's.
    let reservation = match allocator::on_create(state, def, &mut obj, false).await {
        Ok(reservation) => reservation,
        // Another server sharing the datastore allocated it for its copy first.
        Err(_) if state.store.get(def, ns, &name).await?.is_some() => return Ok(false),
        Err(e) => return Err(e),
    };
    match state.store.create(def, ns, &obj).await {
        Ok(_) => {
            reservation.commit(state).await;
            Ok(true)
        }
        Err(e) => {
            reservation.release(state).await;
            // Another server sharing the datastore created it first.
            if e.code == http::StatusCode::CONFLICT {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// How often allocation keys are reconciled with Services (upstream repairs every 3 min).
const REPAIR_INTERVAL: std::time::Duration = std::time::Duration::from_secs(180);

/// Reconcile Service allocations now, then every [`REPAIR_INTERVAL`] until shutdown:
/// covers crashes between a write and its allocation bookkeeping, and Services removed
/// without going through the delete handler.
async fn repair_allocations(state: &AppState) -> ApiResult<()> {
    allocator::repair(state).await?;
    let state = state.clone();
    k3rs_core::task::spawn(async move {
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(REPAIR_INTERVAL) => {}
            }
            if let Err(error) = allocator::repair(&state).await {
                tracing::warn!(%error, "repairing service allocations");
            }
        }
    });
    Ok(())
}

/// Desired `subsets` of the `kubernetes` Endpoints for an API server at `ip:port`.
fn endpoint_subsets(ip: &str, port: u16) -> Value {
    json!([{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}])
}

pub async fn ensure_defaults(state: &AppState) -> ApiResult<()> {
    for ns in NAMESPACES {
        ensure(
            state,
            ("", "v1"),
            "namespaces",
            None,
            json!({"metadata": {"name": ns}}),
        )
        .await?;
    }
    let config = &state.config;
    let port = config.advertise.port();
    let ip = config.advertise.ip().to_string();
    let service = json!({
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": config.cluster.kubernetes_service_ip().to_string(),
            "clusterIPs": [config.cluster.kubernetes_service_ip().to_string()],
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
        }
    });
    ensure(state, ("", "v1"), "services", Some("default"), service).await?;
    repair_allocations(state).await?;

    // Endpoints follow the advertised address, which may change between restarts.
    let endpoints_def = state.find("", "v1", "endpoints").expect("built in");
    let subsets = endpoint_subsets(&ip, port);
    match state
        .store
        .get(&endpoints_def, Some("default"), "kubernetes")
        .await?
    {
        Some(mut current) if current["subsets"] != subsets => {
            current["subsets"] = subsets;
            let rv = crate::object::meta_str(&current, "resourceVersion")
                .unwrap_or_default()
                .parse()
                .unwrap_or_default();
            state
                .store
                .update(&endpoints_def, Some("default"), &current, rv)
                .await?;
        }
        Some(_) => {}
        None => {
            let endpoints = json!({
                "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": subsets,
            });
            ensure(state, ("", "v1"), "endpoints", Some("default"), endpoints).await?;
        }
    }
    let slice = json!({
        "metadata": {"name": "kubernetes", "labels": {
            "kubernetes.io/service-name": "kubernetes",
            "endpointslice.kubernetes.io/managed-by": "k3rs-apiserver"
        }},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    ensure(
        state,
        ("discovery.k8s.io", "v1"),
        "endpointslices",
        Some("default"),
        slice,
    )
    .await?;
    Ok(())
}
