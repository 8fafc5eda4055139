//! persistentVolumeClaim volumes: the claim must be Bound, its PersistentVolume must name
//! the claim back, and the PV must be one this node can mount directly: `hostPath` (what
//! k3s's local-path provisioner makes) or `local`. Other PV types need attach/mount
//! plugins this kubelet does not have.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource,
};

use super::{api_message, host_path, HostVolume};

/// The host directory behind the claim, read-only if the pod's volume says so.
pub async fn resolve(
    client: &kube::Client,
    namespace: &str,
    source: &PersistentVolumeClaimVolumeSource,
) -> Result<HostVolume, String> {
    let name = &source.claim_name;
    let claims: kube::Api<PersistentVolumeClaim> = kube::Api::namespaced(client.clone(), namespace);
    let processing = |why: String| format!("error processing PVC {namespace}/{name}: {why}");
    let claim = match claims.get_opt(name).await {
        Ok(Some(claim)) => claim,
        Ok(None) => {
            return Err(processing(format!(
                "persistentvolumeclaim {name:?} not found"
            )))
        }
        Err(err) => {
            return Err(processing(format!(
                "failed to fetch PVC from API server: {}",
                api_message(&err)
            )))
        }
    };
    let volume_name = bound_volume(&claim).map_err(processing)?;

    let volumes: kube::Api<PersistentVolume> = kube::Api::all(client.clone());
    let volume = volumes.get(&volume_name).await.map_err(|err| {
        processing(format!(
            "failed to fetch PV {volume_name}: {}",
            api_message(&err)
        ))
    })?;
    let path = host_path_of(&volume, &claim).map_err(processing)?;
    Ok(HostVolume {
        host_path: path,
        read_only: source.read_only.unwrap_or(false),
    })
}

/// The PV name of a usable claim, or why it cannot be used yet.
fn bound_volume(claim: &PersistentVolumeClaim) -> Result<String, String> {
    if claim.metadata.deletion_timestamp.is_some() {
        return Err("PVC is being deleted".into());
    }
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Bound") {
        return Err("PVC is not bound".into());
    }
    match claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err("PVC has empty pvc.Spec.VolumeName".into()),
    }
}

/// The PV's directory on this host, checked (and for `DirectoryOrCreate`, created).
fn host_path_of(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Result<PathBuf, String> {
    let pv_name = volume.metadata.name.as_deref().unwrap_or_default();
    let spec = volume
        .spec
        .as_ref()
        .ok_or_else(|| format!("PV {pv_name} has no spec"))?;
    let claim_uid = claim.metadata.uid.as_deref().unwrap_or_default();
    match spec.claim_ref.as_ref() {
        None => {
            return Err(format!(
                "found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
            ))
        }
        Some(reference) if reference.uid.as_deref().unwrap_or_default() != claim_uid => {
            return Err(format!(
                "found PV object {pv_name} but its pv.Spec.ClaimRef.UID ({}) does not point to claim.UID ({claim_uid})",
                reference.uid.as_deref().unwrap_or_default()
            ))
        }
        Some(_) => {}
    }
    if let Some(source) = &spec.host_path {
        let path = PathBuf::from(&source.path);
        host_path::check_type(&path, source.type_.as_deref())?;
        return Ok(path);
    }
    if let Some(local) = &spec.local {
        let path = PathBuf::from(&local.path);
        if !path.exists() {
            return Err(format!("path {:?} does not exist", local.path));
        }
        return Ok(path);
    }
    Err(format!(
        "PV {pv_name} is of a type this node cannot mount: only hostPath and local persistent volumes are supported"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        HostPathVolumeSource, LocalVolumeSource, ObjectReference, PersistentVolumeClaimSpec,
        PersistentVolumeClaimStatus, PersistentVolumeSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn claim(phase: &str, volume: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                uid: Some("claim-uid".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                volume_name: volume.map(str::to_string),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some(phase.into()),
                ..PersistentVolumeClaimStatus::default()
            }),
        }
    }

    fn volume(claim_uid: Option<&str>, spec: PersistentVolumeSpec) -> PersistentVolume {
        PersistentVolume {
            metadata: ObjectMeta {
                name: Some("pv-1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeSpec {
                claim_ref: claim_uid.map(|uid| ObjectReference {
                    uid: Some(uid.into()),
                    ..ObjectReference::default()
                }),
                ..spec
            }),
            status: None,
        }
    }

    #[test]
    fn claims_must_be_bound_to_a_volume() {
        assert_eq!(bound_volume(&claim("Bound", Some("pv-1"))).unwrap(), "pv-1");
        assert_eq!(
            bound_volume(&claim("Pending", None)).unwrap_err(),
            "PVC is not bound"
        );
        assert_eq!(
            bound_volume(&claim("Bound", None)).unwrap_err(),
            "PVC has empty pvc.Spec.VolumeName"
        );
    }

    #[test]
    fn host_path_and_local_volumes_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pvc-data");
        let bound = claim("Bound", Some("pv-1"));
        let host = PersistentVolumeSpec {
            host_path: Some(HostPathVolumeSource {
                path: data.display().to_string(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            ..PersistentVolumeSpec::default()
        };
        assert_eq!(
            host_path_of(&volume(Some("claim-uid"), host.clone()), &bound).unwrap(),
            data
        );
        assert!(data.is_dir());

        let local = PersistentVolumeSpec {
            local: Some(LocalVolumeSource {
                path: dir.path().join("absent").display().to_string(),
                fs_type: None,
            }),
            ..PersistentVolumeSpec::default()
        };
        assert!(host_path_of(&volume(Some("claim-uid"), local), &bound)
            .unwrap_err()
            .contains("does not exist"));

        assert!(host_path_of(&volume(None, host.clone()), &bound)
            .unwrap_err()
            .contains("nil pv.Spec.ClaimRef"));
        assert!(host_path_of(&volume(Some("other"), host), &bound)
            .unwrap_err()
            .contains("does not point to claim.UID (claim-uid)"));
        assert!(host_path_of(
            &volume(Some("claim-uid"), PersistentVolumeSpec::default()),
            &bound
        )
        .unwrap_err()
        .contains("only hostPath and local"));
    }
}
