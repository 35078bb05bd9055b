//! The result of a CNI ADD, typed: interfaces, IP addresses, routes, DNS.
//!
//! The shape is the one of spec 0.3.0 to 1.x (`ips[].address` in CIDR form,
//! `ips[].interface` as an index into `interfaces`; 0.3/0.4 results also carry
//! `ips[].version`, which is ignored). The exact JSON the plugin printed is
//! kept in [`CniResult::raw`]: it is what the next plugin gets as
//! `prevResult` and what the cache stores, so nothing a plugin wrote is lost
//! in a round trip through these types.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A result a plugin printed that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The plugin printed nothing where a result is required (ADD).
    #[error("the plugin printed no result")]
    Empty,
    /// The output is not a CNI result.
    #[error("invalid result JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The result's `ips[].interface` points past `interfaces`.
    #[error("ips[{ip}].interface is {index} but the result has {count} interfaces")]
    InterfaceIndex {
        /// Index in `ips`.
        ip: usize,
        /// The index found.
        index: usize,
        /// Length of `interfaces`.
        count: usize,
    },
}

/// An address with its prefix length, as CNI writes it (`10.222.0.5/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The address (host bits kept: it is an interface address).
    pub addr: IpAddr,
    /// The prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix_len: u8,
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not in CIDR form (address/prefix)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{s:?}: prefix {prefix:?} is not in 0..={max}"))?;
        Ok(IpNet { addr, prefix_len })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An interface the plugins created or configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Interface {
    /// Interface name (`eth0`, the host's `vethXXXX`, the bridge).
    pub name: String,
    /// Hardware address, when the plugin reports one.
    #[serde(default)]
    pub mac: Option<String>,
    /// MTU, when reported (spec 1.1).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The netns path for an interface inside the sandbox; absent for host
    /// interfaces.
    #[serde(default)]
    pub sandbox: Option<String>,
}

impl Interface {
    /// Whether the interface lives in the sandbox (the pod's netns).
    pub fn in_sandbox(&self) -> bool {
        self.sandbox.as_deref().is_some_and(|s| !s.is_empty())
    }
}

/// One address assigned by the plugins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IpConfig {
    /// The address with its prefix.
    pub address: IpNet,
    /// The default gateway for this address, if any.
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`] of the interface holding it.
    #[serde(default)]
    pub interface: Option<usize>,
}

/// A route set up in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Route {
    /// Destination network.
    pub dst: IpNet,
    /// Next hop; absent means the plugin's default gateway.
    #[serde(default)]
    pub gw: Option<IpAddr>,
    /// Route MTU (spec 1.1).
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// DNS settings the plugins suggest for the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Dns {
    /// Name servers, in priority order.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default)]
    pub search: Vec<String>,
    /// resolver options.
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<IpConfig>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    dns: Option<Dns>,
}

/// The final result of an ADD (the last plugin's output).
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    /// `cniVersion` of the result.
    pub cni_version: String,
    /// Interfaces, referenced by index from `ips`.
    pub interfaces: Vec<Interface>,
    /// Assigned addresses.
    pub ips: Vec<IpConfig>,
    /// Routes in the sandbox.
    pub routes: Vec<Route>,
    /// DNS settings (empty when no plugin set any).
    pub dns: Dns,
    /// The JSON exactly as the plugin printed it.
    pub raw: Value,
}

impl CniResult {
    /// Parses a plugin's stdout.
    pub fn parse(stdout: &[u8]) -> Result<Self, ResultError> {
        if stdout.iter().all(u8::is_ascii_whitespace) {
            return Err(ResultError::Empty);
        }
        let raw: Value = serde_json::from_slice(stdout)?;
        Self::from_value(raw)
    }

    /// Types an already parsed result (e.g. from the cache).
    pub fn from_value(raw: Value) -> Result<Self, ResultError> {
        let wire = Wire::deserialize(&raw)?;
        for (ip, config) in wire.ips.iter().enumerate() {
            if let Some(index) = config.interface
                && index >= wire.interfaces.len()
            {
                return Err(ResultError::InterfaceIndex {
                    ip,
                    index,
                    count: wire.interfaces.len(),
                });
            }
        }
        Ok(CniResult {
            cni_version: wire.cni_version,
            interfaces: wire.interfaces,
            ips: wire.ips,
            routes: wire.routes,
            dns: wire.dns.unwrap_or_default(),
            raw,
        })
    }

    /// The pod's addresses: those on interfaces inside the sandbox (or with
    /// no interface given), in result order, without duplicates. The first
    /// is Kubernetes' `podIP`; all of them are `podIPs`.
    pub fn pod_ips(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for ip in &self.ips {
            let in_sandbox = match ip.interface {
                Some(i) => self.interfaces[i].in_sandbox(),
                None => true,
            };
            if in_sandbox && !out.contains(&ip.address.addr) {
                out.push(ip.address.addr);
            }
        }
        out
    }

    /// The addresses configured on the sandbox interface named `ifname`.
    pub fn addresses_of(&self, ifname: &str) -> Vec<IpNet> {
        self.ips
            .iter()
            .filter(|ip| {
                ip.interface.is_some_and(|i| {
                    self.interfaces[i].in_sandbox() && self.interfaces[i].name == ifname
                })
            })
            .map(|ip| ip.address)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // What Debian's bridge + host-local 1.1.1 print (trimmed).
    const BRIDGE: &str = r#"{
      "cniVersion": "1.0.0",
      "interfaces": [
        {"name": "podvisor0", "mac": "aa:bb:cc:dd:ee:01"},
        {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:02"},
        {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/run/netns/p"}
      ],
      "ips": [{"interface": 2, "address": "10.222.0.5/24", "gateway": "10.222.0.1"}],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dns": {"nameservers": ["10.222.0.1"], "search": ["svc"]}
    }"#;

    #[test]
    fn parses_a_bridge_result_and_finds_the_pod_ip() {
        let result = CniResult::parse(BRIDGE.as_bytes()).unwrap();
        assert_eq!(result.cni_version, "1.0.0");
        assert_eq!(result.interfaces.len(), 3);
        assert!(result.interfaces[2].in_sandbox());
        assert!(!result.interfaces[0].in_sandbox());
        let ip = &result.ips[0];
        assert_eq!(ip.address.to_string(), "10.222.0.5/24");
        assert_eq!(ip.gateway, Some("10.222.0.1".parse().unwrap()));
        assert_eq!(result.pod_ips(), ["10.222.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(result.addresses_of("eth0")[0].prefix_len, 24);
        assert!(result.addresses_of("lo").is_empty());
        assert_eq!(result.routes[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(result.routes[0].gw, None);
        assert_eq!(result.dns.nameservers, ["10.222.0.1"]);
        assert_eq!(result.raw["ips"][0]["gateway"], "10.222.0.1");
    }

    #[test]
    fn version_0_4_ips_and_dual_stack() {
        let text = r#"{"cniVersion":"0.4.0",
          "interfaces":[{"name":"eth0","sandbox":"/proc/1/ns/net"},{"name":"vethx"}],
          "ips":[{"version":"4","interface":0,"address":"10.1.0.2/16"},
                 {"version":"6","interface":0,"address":"fd00::2/64"},
                 {"version":"4","interface":1,"address":"10.9.9.9/32"},
                 {"version":"4","address":"10.1.0.2/16"}]}"#;
        let result = CniResult::parse(text.as_bytes()).unwrap();
        let ips: Vec<String> = result.pod_ips().iter().map(|ip| ip.to_string()).collect();
        assert_eq!(ips, ["10.1.0.2", "fd00::2"]);
    }

    #[test]
    fn rejects_bad_results() {
        assert!(matches!(CniResult::parse(b"  \n"), Err(ResultError::Empty)));
        assert!(matches!(
            CniResult::parse(b"[1]"),
            Err(ResultError::Json(_))
        ));
        let bad_cidr = br#"{"ips":[{"address":"10.0.0.1"}]}"#;
        let err = CniResult::parse(bad_cidr).unwrap_err().to_string();
        assert!(err.contains("not in CIDR form"), "{err}");
        let bad_prefix = br#"{"ips":[{"address":"10.0.0.1/33"}]}"#;
        assert!(CniResult::parse(bad_prefix).is_err());
        let bad_index = br#"{"interfaces":[],"ips":[{"address":"10.0.0.1/8","interface":0}]}"#;
        assert!(matches!(
            CniResult::parse(bad_index),
            Err(ResultError::InterfaceIndex {
                index: 0,
                count: 0,
                ..
            })
        ));
    }
}
