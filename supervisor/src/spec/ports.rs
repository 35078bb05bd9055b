//! A container's ports: [`Port`] and [`Protocol`] and their validator
//! (numbers in range, IANA service names unique in the container, host
//! ports defaulted to the container port with hostNetwork). Host ports
//! unique across the pod are checked in [`super::container`]; the portmap
//! itself is [`crate::network`]'s.

use std::net::IpAddr;
use std::str::FromStr;

use super::{Ctx, Result};
use crate::manifest;

/// A port of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// IANA service name, unique in the container.
    pub name: Option<String>,
    /// Port in the pod.
    pub container_port: u16,
    /// Port on the host (portmap; with hostNetwork it equals
    /// containerPort).
    pub host_port: Option<u16>,
    /// Host address for the host port.
    pub host_ip: Option<IpAddr>,
    /// Protocol.
    pub protocol: Protocol,
}

/// A port protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Lower-case name as CNI's portmap wants it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A container's `ports`; `host_network` makes every host port the
/// container port.
pub(super) fn ports(
    ctx: &Ctx<'_>,
    raw: &[manifest::ContainerPort],
    host_network: bool,
    cp: &str,
) -> Result<Vec<Port>> {
    let mut ports: Vec<Port> = Vec::new();
    for (i, port) in raw.iter().enumerate() {
        let pp = format!("{cp}.ports[{i}]");
        let cport = port
            .container_port
            .ok_or_else(|| ctx.err(format!("{pp}.containerPort"), None, "missing"))?;
        let container_port = port_number(ctx, &format!("{pp}.containerPort"), cport)?;
        let mut host_port = match port.host_port {
            None | Some(0) => None,
            Some(h) => Some(port_number(ctx, &format!("{pp}.hostPort"), h)?),
        };
        if host_network {
            match host_port {
                None => host_port = Some(container_port),
                Some(h) if h != container_port => {
                    return Err(ctx.err(
                        format!("{pp}.hostPort"),
                        Some(&h.to_string()),
                        "with hostNetwork, hostPort must equal containerPort",
                    ));
                }
                Some(_) => {}
            }
        }
        let protocol = match port.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(other) => {
                return Err(ctx.err(
                    format!("{pp}.protocol"),
                    Some(other),
                    "must be TCP, UDP or SCTP",
                ));
            }
        };
        let host_ip = match port.host_ip.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                IpAddr::from_str(t)
                    .map_err(|_| ctx.err(format!("{pp}.hostIP"), Some(t), "not an IP address"))?,
            ),
        };
        if let Some(n) = &port.name {
            if !is_port_name(n) {
                return Err(ctx.err(format!("{pp}.name"), Some(n), "must be an IANA service name: at most 15 lower-case letters, digits or '-', with a letter, no '--', not starting or ending with '-'"));
            }
            if ports.iter().any(|o| o.name.as_deref() == Some(n.as_str())) {
                return Err(ctx.err(format!("{pp}.name"), Some(n), "duplicate port name"));
            }
        }
        ports.push(Port {
            name: port.name.clone(),
            container_port,
            host_port,
            host_ip,
            protocol,
        });
    }
    Ok(ports)
}

/// A port number 1..=65535 or a port name of `ports`: what a probe's
/// `port` refers to.
pub(super) fn resolve_port(
    ctx: &Ctx<'_>,
    path: &str,
    port: Option<&manifest::IntOrString>,
    ports: &[Port],
) -> Result<u16> {
    match port {
        None => Err(ctx.err(path, None, "missing")),
        Some(manifest::IntOrString::Int(n)) => port_number(ctx, path, *n),
        Some(manifest::IntOrString::String(name)) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| {
                ctx.err(
                    path,
                    Some(name),
                    "no containerPort of this name in the container's ports",
                )
            }),
    }
}

/// A port number: 1..=65535.
fn port_number(ctx: &Ctx<'_>, path: &str, value: i64) -> Result<u16> {
    u16::try_from(value)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ctx.err(
                path,
                Some(&value.to_string()),
                "must be between 1 and 65535",
            )
        })
}

/// IANA service name (port names): at most 15 of `[a-z0-9-]`, at least
/// one letter, no leading, trailing or double `-`.
fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}
