//! Kubeconfig rendering, shaped like the one k3s writes to
//! `/etc/rancher/k3s/k3s.yaml`: one cluster, context and user, all named `default`,
//! with certificates embedded as base64 `*-data` fields.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    clusters: Vec<Named<ClusterEntry>>,
    contexts: Vec<Named<ContextEntry<'a>>>,
    current_context: &'a str,
    kind: &'a str,
    preferences: Preferences,
    users: Vec<Named<UserEntry>>,
}

#[derive(Serialize)]
struct Named<T> {
    #[serde(flatten)]
    value: T,
    name: &'static str,
}

#[derive(Serialize)]
struct ClusterEntry {
    cluster: Cluster,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    certificate_authority_data: String,
    server: String,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    context: Context<'a>,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct Preferences {}

#[derive(Serialize)]
struct UserEntry {
    user: User,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate_data: String,
    client_key_data: String,
}

/// Render a kubeconfig for `server_url` trusting `ca_pem` and authenticating with the
/// client certificate and key. Cluster, context and user are all named `default`.
/// The result contains a private key: write it with [`crate::write_file_with_mode`].
pub fn render_kubeconfig(
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> String {
    let config = Kubeconfig {
        api_version: "v1",
        clusters: vec![Named {
            value: ClusterEntry {
                cluster: Cluster {
                    certificate_authority_data: STANDARD.encode(ca_pem),
                    server: server_url.to_owned(),
                },
            },
            name: "default",
        }],
        contexts: vec![Named {
            value: ContextEntry {
                context: Context {
                    cluster: "default",
                    user: "default",
                },
            },
            name: "default",
        }],
        current_context: "default",
        kind: "Config",
        preferences: Preferences {},
        users: vec![Named {
            value: UserEntry {
                user: User {
                    client_certificate_data: STANDARD.encode(client_cert_pem),
                    client_key_data: STANDARD.encode(client_key_pem),
                },
            },
            name: "default",
        }],
    };
    // Serialising plain structs of strings cannot fail.
    serde_yaml::to_string(&config).expect("kubeconfig serialises to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_k3s_shaped_yaml() {
        let text = render_kubeconfig("https://127.0.0.1:6443", "CA PEM", "CERT PEM", "KEY PEM");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let b64 = |s: &str| STANDARD.encode(s);
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "default");
        assert!(doc["preferences"].as_mapping().unwrap().is_empty());

        let cluster = &doc["clusters"][0];
        assert_eq!(cluster["name"], "default");
        assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(
            cluster["cluster"]["certificate-authority-data"],
            b64("CA PEM").as_str()
        );

        let context = &doc["contexts"][0];
        assert_eq!(context["name"], "default");
        assert_eq!(context["context"]["cluster"], "default");
        assert_eq!(context["context"]["user"], "default");

        let user = &doc["users"][0];
        assert_eq!(user["name"], "default");
        assert_eq!(
            user["user"]["client-certificate-data"],
            b64("CERT PEM").as_str()
        );
        assert_eq!(user["user"]["client-key-data"], b64("KEY PEM").as_str());
    }

    #[test]
    fn server_url_with_yaml_specials_survives() {
        let url = "https://[fd00::1]:6443/#x: y";
        let text = render_kubeconfig(url, "a", "b", "c");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["clusters"][0]["cluster"]["server"], url);
    }
}
