//! Command-line definition. Every server and agent flag also reads `K3RS_<NAME>` from
//! the environment and a key of the same name from the config file (see `config_file`).
//! Values are parsed into their types here ([`crate::parse`]); rules that involve several
//! flags are checked by `server::Settings::from_args` and `agent_flags`. Either way a bad
//! value is one line naming the flag (see `main`).

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use k3rs_core::join::FlannelBackend;
use k8s_openapi::api::core::v1::Taint;

use crate::parse;

#[derive(Debug, Parser)]
#[command(
    name = "k3rs",
    version,
    about = "Lightweight Kubernetes in one binary",
    args_override_self = true
)]
pub struct Cli {
    /// Log at debug level.
    #[arg(long, global = true, env = "K3RS_DEBUG")]
    pub debug: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server: API server, datastore and (later) controllers and agent.
    Server(Box<ServerArgs>),
    /// Run a node agent that joins the cluster of a server (`--server`, `--token`).
    Agent(Box<AgentCmdArgs>),
    /// Manage bootstrap tokens that let agents join (talks to the local server).
    Token(TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Config file (YAML); `config.yaml.d/*.yaml` beside it are read too.
    #[arg(short = 'c', long, env = "K3RS_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<String>,
    /// Folder for state: certificates, datastore, token.
    #[arg(long, short = 'd', env = "K3RS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the API server listens on.
    #[arg(long, env = "K3RS_BIND_ADDRESS", value_name = "IP", value_parser = parse::ip)]
    pub bind_address: Option<IpAddr>,
    /// HTTPS port of the API server.
    #[arg(long, env = "K3RS_HTTPS_LISTEN_PORT", value_name = "PORT", value_parser = parse::port)]
    pub https_listen_port: Option<u16>,
    /// Address advertised to cluster members (default: the node IP).
    #[arg(long, env = "K3RS_ADVERTISE_ADDRESS", value_name = "IP", value_parser = parse::ip)]
    pub advertise_address: Option<IpAddr>,
    /// Extra hostname or IP in the serving certificate (repeatable).
    #[arg(long, env = "K3RS_TLS_SAN", value_name = "SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Where to write the admin kubeconfig.
    #[arg(long, short = 'o', env = "K3RS_WRITE_KUBECONFIG", value_name = "FILE")]
    pub write_kubeconfig: Option<PathBuf>,
    /// File mode of the kubeconfig, in octal (e.g. 644).
    #[arg(long, env = "K3RS_WRITE_KUBECONFIG_MODE", value_name = "MODE", value_parser = parse::file_mode)]
    pub write_kubeconfig_mode: Option<u32>,
    /// Shared secret used to join nodes and accepted as an admin bearer token.
    #[arg(
        long,
        short = 't',
        env = "K3RS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File holding the token.
    #[arg(long, env = "K3RS_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Pod network.
    #[arg(long, env = "K3RS_CLUSTER_CIDR", value_name = "CIDR", value_parser = parse::cidr)]
    pub cluster_cidr: Option<IpNet>,
    /// Service network.
    #[arg(long, env = "K3RS_SERVICE_CIDR", value_name = "CIDR", value_parser = parse::cidr)]
    pub service_cidr: Option<IpNet>,
    /// Port range for NodePort services.
    #[arg(long, env = "K3RS_SERVICE_NODE_PORT_RANGE", value_name = "RANGE", value_parser = parse::port_range)]
    pub service_node_port_range: Option<RangeInclusive<u16>>,
    /// ClusterIP of the cluster DNS service; must be inside --service-cidr.
    #[arg(long, env = "K3RS_CLUSTER_DNS", value_name = "IP", value_parser = parse::ip)]
    pub cluster_dns: Option<IpAddr>,
    /// Cluster domain.
    #[arg(long, env = "K3RS_CLUSTER_DOMAIN", value_name = "DOMAIN", value_parser = parse::domain)]
    pub cluster_domain: Option<String>,
    /// Name of this node (default: the hostname).
    #[arg(long, env = "K3RS_NODE_NAME", value_name = "NAME", value_parser = parse::node_name)]
    pub node_name: Option<String>,
    /// IP address of this node (default: the address of the default-route interface).
    #[arg(long, env = "K3RS_NODE_IP", value_name = "IP", value_delimiter = ',', value_parser = parse::ip)]
    pub node_ip: Vec<IpAddr>,
    /// Customized flag for the controller manager, as KEY=VALUE (repeatable), e.g.
    /// `node-monitor-grace-period=20s`.
    #[arg(long = "kube-controller-manager-arg", value_name = "KEY=VALUE")]
    pub kube_controller_manager_arg: Vec<String>,
    /// Do not run the controller manager.
    #[arg(long, env = "K3RS_DISABLE_CONTROLLER_MANAGER", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub disable_controller_manager: bool,
    /// Do not run the scheduler.
    #[arg(long, env = "K3RS_DISABLE_SCHEDULER", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub disable_scheduler: bool,
    /// Do not run the agent (kubelet, container runtime) on this server.
    #[arg(long, env = "K3RS_DISABLE_AGENT", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub disable_agent: bool,
    /// Shared secret agents (only) may join with; the server token keeps working too.
    #[arg(
        long,
        env = "K3RS_AGENT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub agent_token: Option<String>,
    /// File holding the agent token.
    #[arg(long, env = "K3RS_AGENT_TOKEN_FILE", value_name = "FILE")]
    pub agent_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// `k3rs agent`: join the cluster of `--server` with `--token` and run this node.
#[derive(Debug, Clone, Args)]
pub struct AgentCmdArgs {
    /// Config file (YAML); `config.yaml.d/*.yaml` beside it are read too.
    #[arg(short = 'c', long, env = "K3RS_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<String>,
    /// Server to join, e.g. https://10.0.0.1:6443.
    #[arg(long, short = 's', env = "K3RS_URL", value_name = "URL", value_parser = parse::server_url)]
    pub server: Option<k3rs_agent::join::ServerUrl>,
    /// Join token: K10<ca-hash>::<user>:<password>, a bootstrap token or a bare password.
    #[arg(
        long,
        short = 't',
        env = "K3RS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File holding the join token.
    #[arg(long, env = "K3RS_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Folder for state: certificates, kubeconfigs, containerd.
    #[arg(long, short = 'd', env = "K3RS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Name of this node (default: the hostname).
    #[arg(long, env = "K3RS_NODE_NAME", value_name = "NAME", value_parser = parse::node_name)]
    pub node_name: Option<String>,
    /// IP address of this node (default: the address this machine reaches the server from).
    #[arg(long, env = "K3RS_NODE_IP", value_name = "IP", value_delimiter = ',', value_parser = parse::ip)]
    pub node_ip: Vec<IpAddr>,
    /// Append a stable random id to the node name, e.g. `worker-5f3c09ab`.
    #[arg(long, env = "K3RS_WITH_NODE_ID", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub with_node_id: bool,
    /// Where this node keeps its node password (default /etc/rancher/node/password); the
    /// node id of --with-node-id is kept beside it. Give each agent on one machine its own.
    #[arg(long, env = "K3RS_NODE_PASSWORD_FILE", value_name = "FILE")]
    pub node_password_file: Option<PathBuf>,
    /// Local port of the agent's load balancer towards the servers (127.0.0.1).
    #[arg(long, env = "K3RS_LB_SERVER_PORT", value_name = "PORT", default_value_t = k3rs_agent::loadbalancer::DEFAULT_PORT, value_parser = parse::nonzero_port)]
    pub lb_server_port: u16,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// `k3rs token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create a bootstrap token and print the join token for it.
    Create(TokenCreateArgs),
    /// List bootstrap tokens.
    List(TokenListArgs),
    /// Delete bootstrap tokens, by id or whole token.
    Delete(TokenDeleteArgs),
}

/// How `k3rs token` reaches the server: the admin kubeconfig `k3rs server` wrote.
#[derive(Debug, Clone, Args)]
pub struct TokenClientArgs {
    /// Kubeconfig of a cluster administrator (default /etc/rancher/k3rs/k3rs.yaml).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    /// How long the token stays valid, e.g. 24h, 90m or 0 (forever).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::token::parse_ttl)]
    pub ttl: crate::token::Ttl,
    /// Note shown by `k3rs token list`.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Use this token (`[a-z0-9]{6}.[a-z0-9]{16}`) instead of a random one.
    #[arg(long, value_name = "ID.SECRET", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub client: TokenClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TokenListArgs {
    /// Output format: text, json or yaml.
    #[arg(long, short = 'o', value_name = "FORMAT", default_value = "text")]
    pub output: String,
    #[command(flatten)]
    pub client: TokenClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TokenDeleteArgs {
    /// Token ids (or whole tokens) to delete.
    #[arg(required = true, value_name = "TOKEN")]
    pub tokens: Vec<String>,
    #[command(flatten)]
    pub client: TokenClientArgs,
}

/// Flags of the node agent, shared by `k3rs server` (unless --disable-agent) and `k3rs agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// External IP address of this node (repeatable).
    #[arg(
        long,
        env = "K3RS_NODE_EXTERNAL_IP",
        value_name = "IP",
        value_delimiter = ',',
        value_parser = parse::ip
    )]
    pub node_external_ip: Vec<IpAddr>,
    /// Label to register the node with, as KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse::label)]
    pub node_label: Vec<(String, String)>,
    /// Taint to register the node with, as KEY[=VALUE]:EFFECT (repeatable).
    #[arg(long, value_name = "KEY[=VALUE]:EFFECT", value_parser = parse::taint)]
    pub node_taint: Vec<Taint>,
    /// Image of the pod sandbox (pause) container.
    #[arg(long, env = "K3RS_PAUSE_IMAGE", value_name = "IMAGE")]
    pub pause_image: Option<String>,
    /// Use this CRI socket instead of the containerd k3rs supervises.
    #[arg(long, env = "K3RS_CONTAINER_RUNTIME_ENDPOINT", value_name = "SOCKET")]
    pub container_runtime_endpoint: Option<String>,
    /// Customized flag for the kubelet, as KEY=VALUE (repeatable), e.g. `port=10250`.
    #[arg(long = "kubelet-arg", value_name = "KEY=VALUE")]
    pub kubelet_arg: Vec<String>,
    /// Pod network backend: vxlan (default), host-gw or none (no CNI config is written).
    #[arg(long, env = "K3RS_FLANNEL_BACKEND", value_name = "BACKEND", value_parser = parse::flannel_backend)]
    pub flannel_backend: Option<FlannelBackend>,
    /// Interface the overlay uses (default: the one holding the node IP).
    #[arg(long, env = "K3RS_FLANNEL_IFACE", value_name = "IFACE")]
    pub flannel_iface: Option<String>,
    /// Use the node's external IP as the overlay's public IP.
    #[arg(long, env = "K3RS_FLANNEL_EXTERNAL_IP", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub flannel_external_ip: bool,
    /// Where the overlay writes flannel's subnet.env (one per node when several share a machine).
    #[arg(long, env = "K3RS_FLANNEL_SUBNET_ENV", value_name = "FILE")]
    pub flannel_subnet_env: Option<PathBuf>,
    /// Turn off tx checksum offload on flannel.1 (works around broken VXLAN checksums on some NICs).
    #[arg(long, env = "K3RS_FLANNEL_TX_CHECKSUM_OFF", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub flannel_tx_checksum_off: bool,
}
