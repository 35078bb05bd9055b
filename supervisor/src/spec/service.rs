//! `kind: Service` documents beside the pod: which ones select it and what
//! they publish on the host ([`ServicePort`]).
//!
//! On one node, k3s's ServiceLB gives a `LoadBalancer` Service its `port`
//! on the node's addresses (a svclb pod with `hostPort: port`, DNAT by the
//! CNI portmap plugin to the Service), and kube-proxy gives `NodePort` and
//! `LoadBalancer` Services their `nodePort`. Here both go straight to the
//! selected pod through the same portmap plugin as `hostPort`
//! ([`crate::network::port_mappings`]), on every host address, and go with
//! the sandbox (CNI DEL). `ClusterIP` and `ExternalName` Services need the
//! cluster's virtual IPs or DNS and stay ignored, with the warning.
//!
//! Validation follows kube-apiserver's `ValidateService`
//! (`pkg/apis/core/validation/validation.go`): ports 1-65535, names
//! required and unique when there are several, `(port, protocol)` unique,
//! `nodePort` inside the default `--service-node-port-range`
//! (30000-32767). A NodePort Service here must give its `nodePort`: the
//! API server would pick one at random, and a port nobody can know is of
//! no use on a bare host. The endpoints follow `FindPort`
//! (`pkg/api/v1/pod/util.go`): a named `targetPort` is the containerPort of
//! that name and protocol in any of the pod's containers.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;

use super::container::Container;
use super::ports::Protocol;
use super::{DocRef, Result, invalid};
use crate::manifest::{self, IgnoredFields, IntOrString};

/// kube-apiserver's default `--service-node-port-range`.
pub const NODE_PORT_RANGE: RangeInclusive<u16> = 30000..=32767;

/// The Service types that publish a port on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// `port` (ServiceLB) and, when given, `nodePort`.
    LoadBalancer,
    /// `nodePort`.
    NodePort,
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceType::LoadBalancer => "LoadBalancer",
            ServiceType::NodePort => "NodePort",
        })
    }
}

/// One port of a Service, published on the host to the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `metadata.name` of the Service.
    pub service: String,
    /// Its type.
    pub service_type: ServiceType,
    /// The port on the host's addresses.
    pub host_port: u16,
    /// The port in the pod (`targetPort`, resolved).
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// What the pod is, for the selection: its namespace, labels, containers
/// and network.
pub(super) struct SelectedPod<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub containers: Vec<&'a Container>,
    pub host_network: bool,
    /// The containers' `hostPort`s (port, protocol), which a Service port
    /// must not take again.
    pub host_ports: Vec<(u16, Protocol)>,
}

/// What the file's Services make of the pod: the ports to publish, and a
/// description of each ignored Service (`Service web (ClusterIP)`) for the
/// ignored-kinds warning; `warnings` gets the Services that select nothing.
pub(super) struct Published {
    pub ports: Vec<ServicePort>,
    pub ignored: Vec<String>,
}

/// Validates every Service of the file and publishes the ports of those
/// that select `pod`.
pub(super) fn published(
    file: &str,
    services: &[(DocRef, &manifest::Service)],
    pod: &SelectedPod<'_>,
    warnings: &mut Vec<String>,
    ignored_fields: &mut Vec<String>,
) -> Result<Published> {
    let mut out = Published {
        ports: Vec::new(),
        ignored: Vec::new(),
    };
    let mut taken: BTreeMap<(u16, Protocol), String> = pod
        .host_ports
        .iter()
        .map(|&key| (key, "a container's hostPort".to_owned()))
        .collect();
    for (doc, service) in services {
        let name = match &service.metadata.name {
            Some(n) if !n.is_empty() => n.clone(),
            _ => return Err(invalid(file, doc, "metadata.name", None, "missing")),
        };
        let err = |path: String, value: Option<String>, reason: String| {
            invalid(file, doc, path, value, reason)
        };
        let default_spec = manifest::ServiceSpec::default();
        let spec = service.spec.as_ref().unwrap_or(&default_spec);
        let service_type = match spec.type_.as_deref() {
            None | Some("ClusterIP") => None,
            Some("ExternalName") => None,
            Some("LoadBalancer") => Some(ServiceType::LoadBalancer),
            Some("NodePort") => Some(ServiceType::NodePort),
            Some(other) => {
                return Err(err(
                    "spec.type".into(),
                    Some(other.into()),
                    "must be ClusterIP, NodePort, LoadBalancer or ExternalName".into(),
                ));
            }
        };
        let Some(service_type) = service_type else {
            let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
            out.ignored.push(format!("Service {name} ({type_})"));
            continue;
        };
        let prefix = format!("(Service {name}) ");
        service
            .metadata
            .ignored_fields(&format!("{prefix}metadata."), ignored_fields);
        spec.ignored_fields(&format!("{prefix}spec."), ignored_fields);
        for (present, field) in [
            (spec.cluster_ip.is_some(), "clusterIP"),
            (spec.cluster_ips.is_some(), "clusterIPs"),
            (spec.external_ips.is_some(), "externalIPs"),
            (spec.load_balancer_ip.is_some(), "loadBalancerIP"),
        ] {
            if present {
                ignored_fields.push(format!("{prefix}spec.{field}"));
            }
        }
        let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
        let selector = spec.selector.as_ref().filter(|s| !s.is_empty());
        let selects = namespace == pod.namespace
            && selector.is_some_and(|s| s.iter().all(|(k, v)| pod.labels.get(k) == Some(v)));
        if !selects {
            let why = match selector {
                None => "it has no selector".to_owned(),
                Some(_) if namespace != pod.namespace => {
                    format!(
                        "it is in namespace {namespace}, the pod in {}",
                        pod.namespace
                    )
                }
                Some(s) => format!(
                    "its selector {} does not match the pod's labels",
                    s.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            warnings.push(format!(
                "{file}: {doc}: selects no pod of this file ({why}): nothing is published"
            ));
            continue;
        }
        if pod.host_network {
            return Err(err(
                "spec.type".into(),
                Some(service_type.to_string()),
                "not supported for a hostNetwork pod: its ports are already the host's".into(),
            ));
        }
        let ports = service_ports(file, doc, &name, service_type, spec, pod)?;
        for (path, port) in ports {
            let key = (port.host_port, port.protocol);
            if let Some(owner) = taken.insert(key, format!("Service {name}")) {
                return Err(err(
                    path,
                    Some(port.host_port.to_string()),
                    format!(
                        "host port {}/{} is already published by {owner}",
                        port.host_port,
                        port.protocol.as_str()
                    ),
                ));
            }
            out.ports.push(port);
        }
    }
    Ok(out)
}

/// The ports a Service that selects the pod publishes, each with the
/// field path its host port comes from.
fn service_ports(
    file: &str,
    doc: &DocRef,
    name: &str,
    service_type: ServiceType,
    spec: &manifest::ServiceSpec,
    pod: &SelectedPod<'_>,
) -> Result<Vec<(String, ServicePort)>> {
    let err =
        |path: String, value: Option<String>, reason: &str| invalid(file, doc, path, value, reason);
    if spec.ports.is_empty() {
        return Err(err(
            "spec.ports".into(),
            None,
            "a Service of this type needs at least one port",
        ));
    }
    let port_number = |path: String, value: i64| -> Result<u16> {
        u16::try_from(value)
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| err(path, Some(value.to_string()), "must be between 1 and 65535"))
    };
    let mut out = Vec::new();
    let mut seen: Vec<(u16, Protocol)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in spec.ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        match p.name.as_deref() {
            None | Some("") if spec.ports.len() > 1 => {
                return Err(err(
                    format!("{pp}.name"),
                    None,
                    "missing: each port of a Service with several needs a name",
                ));
            }
            None | Some("") => {}
            Some(n) if names.contains(&n) => {
                return Err(err(
                    format!("{pp}.name"),
                    Some(n.into()),
                    "duplicate port name",
                ));
            }
            Some(n) => names.push(n),
        }
        let protocol = match p.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(other) => {
                return Err(err(
                    format!("{pp}.protocol"),
                    Some(other.into()),
                    "must be TCP, UDP or SCTP",
                ));
            }
        };
        let port = port_number(
            format!("{pp}.port"),
            p.port
                .ok_or_else(|| err(format!("{pp}.port"), None, "missing"))?,
        )?;
        if seen.contains(&(port, protocol)) {
            return Err(err(
                format!("{pp}.port"),
                Some(port.to_string()),
                "duplicate port and protocol",
            ));
        }
        seen.push((port, protocol));
        let node_port = match p.node_port {
            None | Some(0) => None,
            Some(n) => {
                let n = port_number(format!("{pp}.nodePort"), n)?;
                if !NODE_PORT_RANGE.contains(&n) {
                    return Err(err(
                        format!("{pp}.nodePort"),
                        Some(n.to_string()),
                        "must be in the node port range 30000-32767 (kube-apiserver's default --service-node-port-range)",
                    ));
                }
                Some(n)
            }
        };
        let container_port = match &p.target_port {
            None => port,
            Some(IntOrString::Int(0)) => port,
            Some(IntOrString::Int(n)) => port_number(format!("{pp}.targetPort"), *n)?,
            Some(IntOrString::String(target)) => pod
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .find(|cp| cp.name.as_deref() == Some(target.as_str()) && cp.protocol == protocol)
                .map(|cp| cp.container_port)
                .ok_or_else(|| {
                    err(
                        format!("{pp}.targetPort"),
                        Some(target.clone()),
                        "no containerPort of this name and protocol in the pod",
                    )
                })?,
        };
        let published = |host_port| ServicePort {
            service: name.to_owned(),
            service_type,
            host_port,
            container_port,
            protocol,
        };
        match service_type {
            ServiceType::LoadBalancer => {
                out.push((format!("{pp}.port"), published(port)));
                if let Some(n) = node_port.filter(|n| *n != port) {
                    out.push((format!("{pp}.nodePort"), published(n)));
                }
            }
            ServiceType::NodePort => {
                let n = node_port.ok_or_else(|| {
                    err(
                        format!("{pp}.nodePort"),
                        None,
                        "missing: give the port (30000-32767); kube-apiserver would pick one at random",
                    )
                })?;
                out.push((format!("{pp}.nodePort"), published(n)));
            }
        }
    }
    Ok(out)
}
