//! The pod's network: the sandbox's IP from CNI, and the files a container
//! sees for name resolution (/etc/hosts, /etc/resolv.conf, /etc/hostname),
//! written in the pod's state dir and bind-mounted, as kubelet does.
//!
//! The address belongs to the sandbox (pause's network namespace), not to
//! any container, so it survives container restarts. Without a CNI
//! configuration the sandbox has loopback only; with `hostNetwork` it has
//! the host's network and nothing here is attached.

use crate::cni::{self, Attachment, CniResult, Network, PortMapping};
use crate::spec::{PodSpec, Protocol};
use container::rootfs::BindMount;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where the CNI configuration and plugins are, and where results are kept
/// for DEL (also after a crash).
#[derive(Debug, Clone)]
pub struct CniPaths {
    pub conf_dir: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
}

/// The CNI attachment of one sandbox.
pub struct PodNetwork {
    network: Network,
    attachment: Attachment,
}

impl PodNetwork {
    /// Load the CNI configuration; None when there is none (a
    /// loopback-only sandbox).
    pub fn load(paths: &CniPaths) -> Result<Option<Network>, cni::CniError> {
        Network::load(&paths.conf_dir, &paths.bin_dirs, &paths.cache_dir)
    }

    /// Attach the sandbox whose netns is at `netns` (CNI ADD).
    pub fn attach(
        network: Network,
        pod: &PodSpec,
        container_id: &str,
        netns: &Path,
    ) -> Result<(PodNetwork, CniResult), cni::CniError> {
        let attachment = Attachment {
            container_id: container_id.to_string(),
            netns: netns.to_path_buf(),
            ifname: cni::DEFAULT_IFNAME.to_string(),
            pod_name: pod.name.clone(),
            pod_namespace: pod.namespace.clone(),
            pod_uid: None,
            port_mappings: port_mappings(pod),
        };
        let result = network.add(&attachment)?;
        Ok((
            PodNetwork {
                network,
                attachment,
            },
            result,
        ))
    }

    /// Detach (CNI DEL): the address goes back to the pool.
    pub fn detach(self) -> Result<(), cni::CniError> {
        self.network.del(&self.attachment)
    }

    /// The network's one-line description.
    pub fn describe(&self) -> String {
        self.network.to_string()
    }
}

/// The host ports of every container, then the ports of the Services
/// that select the pod (on every host address, as ServiceLB and node
/// ports are), for the portmap plugin.
pub fn port_mappings(pod: &PodSpec) -> Vec<PortMapping> {
    let protocol = |p: Protocol| match p {
        Protocol::Tcp => cni::Protocol::Tcp,
        Protocol::Udp => cni::Protocol::Udp,
        Protocol::Sctp => cni::Protocol::Sctp,
    };
    let host_ports = pod.all_containers().flat_map(|c| &c.ports).filter_map(|p| {
        Some(PortMapping {
            host_port: p.host_port?,
            container_port: p.container_port,
            protocol: protocol(p.protocol),
            host_ip: p.host_ip,
        })
    });
    let service_ports = pod.service_ports.iter().map(|s| PortMapping {
        host_port: s.host_port,
        container_port: s.container_port,
        protocol: protocol(s.protocol),
        host_ip: None,
    });
    host_ports.chain(service_ports).collect()
}

/// Undo what a previous run of the same sandbox left behind when it was
/// killed before its teardown: CNI DEL from the cached result (which frees
/// the address in host-local's store even when the netns is gone).
/// Returns one line per problem; nothing here stops the new run.
pub fn release_leftovers(paths: &CniPaths, container_id: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let listing = match cni::cache::list(&paths.cache_dir) {
        Ok(listing) => listing,
        Err(error) => return vec![error.to_string()],
    };
    for (path, entry) in listing {
        let entry = match entry {
            Ok(entry) if entry.attachment.container_id == container_id => entry,
            Ok(_) => continue,
            Err(error) => {
                problems.push(format!("{}: {error}", path.display()));
                continue;
            }
        };
        let released = Network::from_cache(&entry, &paths.bin_dirs, &paths.cache_dir)
            .and_then(|network| network.del(&entry.attachment));
        match released {
            Ok(()) => eprintln!(
                "supervisor: released the address of a previous run (network {})",
                entry.network_name
            ),
            Err(error) => problems.push(error.to_string()),
        }
    }
    problems
}

/// The files every container of the pod gets at /etc/hosts,
/// /etc/resolv.conf and /etc/hostname.
pub fn write_pod_files(
    pod: &PodSpec,
    pod_ips: &[IpAddr],
    dns: Option<&cni::result::Dns>,
    dir: &Path,
) -> std::io::Result<Vec<BindMount>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let mut write = |name: &str, content: String| -> std::io::Result<()> {
        let path = dir.join(name);
        crate::atomic_file::write_atomic(&path, content.as_bytes())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        files.push(BindMount {
            source: path,
            target: PathBuf::from("/etc").join(name),
            read_only: false,
        });
        Ok(())
    };
    write("hosts", hosts_file(pod, pod_ips))?;
    write("hostname", format!("{}\n", pod.hostname))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write("resolv.conf", resolv_conf(dns, &host_resolv))?;
    Ok(files)
}

/// /etc/hosts as kubelet writes it for a pod.
pub fn hosts_file(pod: &PodSpec, pod_ips: &[IpAddr]) -> String {
    let mut hosts = String::from(
        "# Kubernetes-managed hosts file (written by supervisor).\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    let names = match &pod.subdomain {
        Some(sub) => format!(
            "{host}.{sub}.{ns}.svc.cluster.local\t{host}",
            host = pod.hostname,
            ns = pod.namespace
        ),
        None => pod.hostname.clone(),
    };
    for ip in pod_ips {
        let _ = writeln!(hosts, "{ip}\t{names}");
    }
    if !pod.host_aliases.is_empty() {
        hosts.push_str("\n# Entries added by HostAliases.\n");
        for alias in &pod.host_aliases {
            let _ = writeln!(hosts, "{}\t{}", alias.ip, alias.hostnames.join("\t"));
        }
    }
    hosts
}

/// resolv.conf: the CNI result's DNS when it gives name servers, else the
/// host's (dnsPolicy Default: there is no cluster DNS on one host).
pub fn resolv_conf(dns: Option<&cni::result::Dns>, host: &str) -> String {
    match dns.filter(|d| !d.nameservers.is_empty()) {
        Some(dns) => {
            let mut out = String::new();
            for server in &dns.nameservers {
                let _ = writeln!(out, "nameserver {server}");
            }
            if !dns.search.is_empty() {
                let _ = writeln!(out, "search {}", dns.search.join(" "));
            }
            if !dns.options.is_empty() {
                let _ = writeln!(out, "options {}", dns.options.join(" "));
            }
            out
        }
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml_spec: &str) -> PodSpec {
        crate::spec::load_str(
            "t.yaml",
            &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n{yaml_spec}  containers:\n  - name: c\n    image: busybox:1.36\n    command: [/bin/true]\n    ports: [{{containerPort: 80, hostPort: 8080}}, {{containerPort: 81}}]\n"),
        )
        .unwrap()
        .pod
    }

    #[test]
    fn hosts_names_the_pod_on_its_ip_with_subdomain_and_aliases() {
        let p = pod(
            "  hostname: h\n  subdomain: s\n  hostAliases:\n  - ip: 10.0.0.9\n    hostnames: [db, db.local]\n",
        );
        let hosts = hosts_file(&p, &["10.222.0.5".parse().unwrap()]);
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
        assert!(
            hosts.contains("10.222.0.5\th.s.default.svc.cluster.local\th\n"),
            "{hosts}"
        );
        assert!(hosts.contains("10.0.0.9\tdb\tdb.local\n"), "{hosts}");
    }

    #[test]
    fn only_host_ports_become_port_mappings() {
        let mappings = port_mappings(&pod(""));
        assert_eq!(mappings.len(), 1);
        assert_eq!(
            (mappings[0].host_port, mappings[0].container_port),
            (8080, 80)
        );
    }

    #[test]
    fn service_ports_follow_the_host_ports_on_every_address() {
        let mut p = pod("");
        p.service_ports.push(crate::spec::ServicePort {
            service: "web".into(),
            service_type: crate::spec::ServiceType::NodePort,
            host_port: 30080,
            container_port: 80,
            protocol: Protocol::Udp,
        });
        let mappings = port_mappings(&p);
        assert_eq!(mappings.len(), 2);
        let m = &mappings[1];
        assert_eq!(
            (m.host_port, m.container_port, m.host_ip),
            (30080, 80, None)
        );
        assert_eq!(m.protocol, cni::Protocol::Udp);
    }

    #[test]
    fn resolv_conf_prefers_the_cni_dns_and_falls_back_to_the_host() {
        let host = "nameserver 192.0.2.1\n";
        assert_eq!(resolv_conf(None, host), host);
        let dns = cni::result::Dns {
            nameservers: vec!["10.222.0.1".into()],
            search: vec!["svc.local".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(Some(&dns), host),
            "nameserver 10.222.0.1\nsearch svc.local\n"
        );
    }
}
