//! The CNI runtime against the real plugins (Debian's
//! containernetworking-plugins in /usr/lib/cni), as root.
//!
//! Every test makes its own network namespace (`podvisor-test-<pid>-<n>`),
//! its own bridge (`pvt<pid>x<n>`), its own /24 in 10.223.0.0/16 and its own
//! host-local store in a tempdir, so tests run in parallel and never touch a
//! running pod's network (the shipped example uses 10.222.0.0/24 and
//! `podvisor0`). Traffic goes only to addresses inside those namespaces and
//! to loopback. A test that lacks a prerequisite skips with a reason, and
//! FAILS when `CI=true`.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use supervisor::cni::{
    self, Attachment, CniError, ExecError, Network, NetworkConfig, PortMapping, Protocol,
};

/// Skip (return) unless `$cond`; under CI=true, fail instead.
macro_rules! require {
    ($cond:expr, $what:expr) => {
        if !$cond {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("prerequisite missing under CI=true: {}", $what);
            }
            eprintln!("SKIPPED: prerequisite missing: {}", $what);
            return;
        }
    };
}

fn example_conflist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cni/10-podvisor.conflist")
}

fn have_command(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Root, the plugins and the tools these tests drive. Returns false (after
/// `require!` printed why) when something is missing.
fn prerequisites(need_iptables: bool) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("root (uid 0)".into());
    }
    let bins = cni::default_bin_dirs();
    for plugin in ["bridge", "host-local", "portmap", "loopback"] {
        if cni::find_plugin(plugin, &bins).is_none() {
            return Err(format!(
                "CNI plugin {plugin} in /opt/cni/bin or /usr/lib/cni (Debian package containernetworking-plugins)"
            ));
        }
    }
    if !have_command("ip") {
        return Err("`ip` (package iproute2)".into());
    }
    if !Path::new("/bin/busybox").is_file() {
        return Err("/bin/busybox (package busybox-static)".into());
    }
    if need_iptables && !have_command("iptables") {
        return Err("`iptables` for the portmap plugin (package iptables)".into());
    }
    Ok(())
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// One test's private network world; everything is undone on drop.
struct World {
    n: u8,
    netns: String,
    bridge: String,
    subnet_octet: u8,
    dir: tempfile::TempDir,
    servers: Vec<Child>,
}

impl World {
    fn new(n: u8) -> World {
        let pid = std::process::id();
        let netns = format!("podvisor-test-{pid}-{n}");
        run(Command::new("ip").args(["netns", "add", &netns]));
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["conf", "cache", "ipam", "www"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        World {
            n,
            netns,
            bridge: format!("pvt{}x{n}", pid % 100_000),
            subnet_octet: free_subnet_octet(n),
            dir,
            servers: Vec::new(),
        }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn subnet_prefix(&self) -> String {
        format!("10.223.{}.", self.subnet_octet)
    }

    fn gateway(&self) -> IpAddr {
        format!("{}1", self.subnet_prefix()).parse().unwrap()
    }

    fn network_name(&self) -> String {
        format!("podvisor-test-{}-{}", std::process::id(), self.n)
    }

    /// The shipped example, moved to this test's bridge, subnet and store.
    fn write_conflist(&self) {
        self.write_conflist_with(|_| {});
    }

    /// Same, then `edit` changes the ipam range (to provoke plugin errors).
    fn write_conflist_with(&self, edit: impl FnOnce(&mut Value)) {
        let mut list: Value =
            serde_json::from_slice(&fs::read(example_conflist()).unwrap()).unwrap();
        list["name"] = self.network_name().into();
        let bridge = &mut list["plugins"][0];
        bridge["bridge"] = self.bridge.clone().into();
        let range = &mut bridge["ipam"]["ranges"][0][0];
        range["subnet"] = format!("{}0/24", self.subnet_prefix()).into();
        range["gateway"] = self.gateway().to_string().into();
        edit(range);
        bridge["ipam"]["dataDir"] = self.path("ipam").to_string_lossy().into_owned().into();
        fs::write(
            self.path("conf").join("10-test.conflist"),
            serde_json::to_vec_pretty(&list).unwrap(),
        )
        .unwrap();
    }

    fn network(&self) -> Network {
        Network::load(
            &self.path("conf"),
            &cni::default_bin_dirs(),
            &self.path("cache"),
        )
        .expect("the test conflist loads")
        .expect("the test conflist is found")
        .with_timeout(Duration::from_secs(30))
    }

    fn attachment(&self, port_mappings: Vec<PortMapping>) -> Attachment {
        Attachment {
            container_id: format!("podvisortest{}n{}", std::process::id(), self.n),
            netns: PathBuf::from("/run/netns").join(&self.netns),
            ifname: cni::DEFAULT_IFNAME.into(),
            pod_name: "cni-test".into(),
            pod_namespace: "default".into(),
            pod_uid: None,
            port_mappings,
        }
    }

    /// Files host-local keeps for allocated addresses of our network.
    fn allocated(&self) -> Vec<String> {
        let store = self.path("ipam").join(self.network_name());
        let Ok(entries) = fs::read_dir(store) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.parse::<IpAddr>().is_ok())
            .collect()
    }

    fn in_netns(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).args(args);
        cmd
    }

    fn has_link(&self, name: &str) -> bool {
        succeeds(Command::new("ip").args(["-n", &self.netns, "link", "show", name]))
    }

    /// busybox httpd on `ip:8080` inside the netns, serving `body`.
    fn serve(&mut self, ip: IpAddr, body: &str) {
        fs::write(self.path("www").join("index.html"), body).unwrap();
        let listen = format!("{ip}:8080");
        let www = self.path("www");
        // `ip netns exec` execs the command, so the pid is httpd's.
        let child = self
            .in_netns(&["/bin/busybox", "httpd", "-f", "-p", &listen, "-h"])
            .arg(www)
            .spawn()
            .expect("spawn httpd");
        self.servers.push(child);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// The third octet of a 10.223.X.0/24 no interface on the host uses. Tests
/// of one process differ in X mod 8 (`n` < 8); the start is spread by pid and
/// taken subnets are skipped, so concurrent test processes do not meet.
fn free_subnet_octet(n: u8) -> u8 {
    assert!(n < 8);
    let start = (std::process::id() % 32) as u16 * 8;
    (0..32u16)
        .map(|k| ((start + u16::from(n) + k * 8) % 256) as u8)
        .find(|octet| {
            let prefix = format!("10.223.{octet}.0/24");
            let out = run(Command::new("ip").args(["-4", "-o", "addr", "show", "to", &prefix]));
            out.stdout.is_empty()
        })
        .expect("a free /24 in 10.223.0.0/16")
}

/// GET / from `addr`, retrying until `timeout` (the server may be starting).
fn http_get(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })();
        match attempt {
            Ok(response) => return Ok(response),
            Err(e) if Instant::now() >= deadline => return Err(format!("{addr}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn free_host_port(n: u8) -> u16 {
    let base = 30_000 + (std::process::id() % 2_000) as u16 * 10 + u16::from(n);
    (0..50)
        .map(|i| base + i * 20)
        .find(|port| std::net::TcpListener::bind(("0.0.0.0", *port)).is_ok())
        .expect("a free port")
}

#[test]
fn add_gives_an_address_the_host_reaches_and_del_releases_it() {
    let missing = prerequisites(false);
    require!(missing.is_ok(), missing.unwrap_err());
    let mut world = World::new(0);
    world.write_conflist();
    let network = world.network();
    let attachment = world.attachment(Vec::new());

    // Loopback first, as the runtime does it for every sandbox.
    let lo = Network::loopback(&cni::default_bin_dirs(), &world.path("cache")).unwrap();
    assert!(!succeeds(&mut world.in_netns(&[
        "/bin/busybox",
        "ping",
        "-c1",
        "-W1",
        "127.0.0.1"
    ])));
    lo.add(&attachment).unwrap();
    run(&mut world.in_netns(&["/bin/busybox", "ping", "-c1", "-W1", "127.0.0.1"]));

    let result = network.add(&attachment).unwrap();
    let ips = result.pod_ips();
    assert_eq!(ips.len(), 1, "{result:?}");
    let ip = ips[0];
    assert!(ip.to_string().starts_with(&world.subnet_prefix()), "{ip}");
    assert_eq!(result.ips[0].gateway, Some(world.gateway()));
    assert_eq!(result.addresses_of("eth0")[0].prefix_len, 24);
    let eth0 =
        run(Command::new("ip").args(["-n", &world.netns, "-4", "-o", "addr", "show", "eth0"]));
    let eth0 = String::from_utf8_lossy(&eth0.stdout);
    assert!(eth0.contains(&format!("inet {ip}/24")), "{eth0}");
    assert_eq!(world.allocated(), [ip.to_string()]);
    assert!(succeeds(Command::new("ip").args([
        "link",
        "show",
        &world.bridge
    ])));
    assert_eq!(network.cached_result(&attachment).unwrap().unwrap(), result);
    network.check(&attachment).unwrap();

    world.serve(ip, "hello from the pod");
    let response = http_get(SocketAddr::new(ip, 8080), Duration::from_secs(10)).unwrap();
    assert!(response.contains("hello from the pod"), "{response}");

    network.del(&attachment).unwrap();
    assert!(
        world.allocated().is_empty(),
        "host-local still holds {:?}",
        world.allocated()
    );
    assert!(!world.has_link("eth0"), "the veth is gone with DEL");
    assert!(network.cached_result(&attachment).unwrap().is_none());
    assert!(http_get(SocketAddr::new(ip, 8080), Duration::ZERO).is_err());
    lo.del(&attachment).unwrap();
    // DEL twice is fine (the runtime retries after crashes).
    network.del(&attachment).unwrap();
}

#[test]
fn a_plugin_error_carries_the_plugins_message_and_add_is_undone() {
    let missing = prerequisites(false);
    require!(missing.is_ok(), missing.unwrap_err());
    // A pool of exactly one address: the second pod cannot get one.
    let world = World::new(1);
    let only = format!("{}2", world.subnet_prefix());
    world.write_conflist_with(|range| {
        range["rangeStart"] = only.clone().into();
        range["rangeEnd"] = only.clone().into();
    });
    let network = world.network();
    let first = world.attachment(Vec::new());
    network.add(&first).unwrap();
    assert_eq!(world.allocated(), std::slice::from_ref(&only));

    let second_netns = format!("{}-b", world.netns);
    run(Command::new("ip").args(["netns", "add", &second_netns]));
    let second = Attachment {
        container_id: format!("{}b", first.container_id),
        netns: PathBuf::from("/run/netns").join(&second_netns),
        ..first.clone()
    };
    let err = network.add(&second).unwrap_err();
    let text = err.to_string();
    match &err {
        CniError::Plugin {
            plugin,
            command,
            source: ExecError::Plugin { msg, .. },
            ..
        } => {
            assert_eq!(plugin, "bridge", "{text}");
            assert_eq!(*command, cni::Command::Add);
            // host-local's own words, passed up through bridge.
            assert!(msg.contains("no IP addresses available"), "{msg}");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(text.contains("CNI plugin bridge ADD failed"), "{text}");
    // The rollback DEL removed the veth bridge had made before IPAM failed,
    // and did not touch the first pod.
    let second_has_eth0 =
        succeeds(Command::new("ip").args(["-n", &second_netns, "link", "show", "eth0"]));
    let _ = Command::new("ip")
        .args(["netns", "del", &second_netns])
        .output();
    assert!(!second_has_eth0, "rollback left eth0 in the second netns");
    assert_eq!(world.allocated(), [only]);
    assert!(network.cached_result(&second).unwrap().is_none());
    network.del(&first).unwrap();
    assert!(world.allocated().is_empty());
}

#[test]
fn a_broken_ipam_section_is_reported_with_the_failed_rollback() {
    let missing = prerequisites(false);
    require!(missing.is_ok(), missing.unwrap_err());
    let world = World::new(5);
    world.write_conflist_with(|range| range["subnet"] = "10.223.0.0/33".into());
    let network = world.network();
    let attachment = world.attachment(Vec::new());
    let err = network.add(&attachment).unwrap_err();
    let text = err.to_string();
    // DEL fails on the same broken section; the ADD failure comes first.
    assert!(matches!(err, CniError::Rollback { .. }), "{text}");
    match err.root_cause() {
        CniError::Plugin {
            plugin,
            command: cni::Command::Add,
            source: ExecError::Plugin { msg, .. },
            ..
        } => {
            assert_eq!(plugin, "bridge");
            assert!(
                msg.contains("10.223.0.0/33"),
                "the plugin's own message: {msg}"
            );
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(text.contains("undoing it with DEL also failed"), "{text}");
    assert!(world.allocated().is_empty());
    assert!(network.cached_result(&attachment).unwrap().is_none());
}

#[test]
fn check_notices_a_broken_attachment() {
    let missing = prerequisites(false);
    require!(missing.is_ok(), missing.unwrap_err());
    let world = World::new(2);
    world.write_conflist();
    let network = world.network();
    let attachment = world.attachment(Vec::new());
    network.add(&attachment).unwrap();
    network.check(&attachment).unwrap();
    run(Command::new("ip").args(["-n", &world.netns, "addr", "flush", "dev", "eth0"]));
    let err = network.check(&attachment).unwrap_err();
    assert!(
        matches!(
            &err,
            CniError::Plugin {
                command: cni::Command::Check,
                ..
            }
        ),
        "{err}"
    );
    network.del(&attachment).unwrap();
    assert!(world.allocated().is_empty());
}

#[test]
fn del_after_the_netns_is_gone_still_releases_the_address() {
    let missing = prerequisites(false);
    require!(missing.is_ok(), missing.unwrap_err());
    let world = World::new(3);
    world.write_conflist();
    let network = world.network();
    let attachment = world.attachment(Vec::new());
    let result = network.add(&attachment).unwrap();
    assert_eq!(world.allocated(), [result.pod_ips()[0].to_string()]);
    // The sandbox died and its netns went with it (pause killed, host crash).
    run(Command::new("ip").args(["netns", "del", &world.netns]));
    // A fresh run knows only the cache: rebuild the network from it.
    let entries = cni::cache::list(&world.path("cache")).unwrap();
    assert_eq!(entries.len(), 1);
    let entry = entries[0].1.as_ref().unwrap();
    let again = Network::from_cache(entry, &cni::default_bin_dirs(), &world.path("cache")).unwrap();
    again.del(&entry.attachment).unwrap();
    assert!(world.allocated().is_empty());
    assert!(cni::cache::list(&world.path("cache")).unwrap().is_empty());
}

#[test]
fn host_port_reaches_the_pod_through_portmap() {
    let missing = prerequisites(true);
    require!(missing.is_ok(), missing.unwrap_err());
    let mut world = World::new(4);
    world.write_conflist();
    let network = world.network();
    let host_port = free_host_port(world.n);
    let attachment = world.attachment(vec![PortMapping {
        host_port,
        container_port: 8080,
        protocol: Protocol::Tcp,
        host_ip: None,
    }]);
    let result = network.add(&attachment).unwrap();
    let ip = result.pod_ips()[0];
    world.serve(ip, "hello through the host port");
    http_get(SocketAddr::new(ip, 8080), Duration::from_secs(10)).unwrap();

    // Our own bridge address, then loopback (portmap enables route_localnet
    // on the bridge and masquerades hairpin traffic for that).
    for host in [world.gateway(), IpAddr::from([127, 0, 0, 1])] {
        let response = http_get(SocketAddr::new(host, host_port), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("hostPort {host_port} via {host}: {e}"));
        assert!(
            response.contains("hello through the host port"),
            "{response}"
        );
    }
    let nat = run(Command::new("iptables").args(["-w", "-t", "nat", "-S"]));
    let nat = String::from_utf8_lossy(&nat.stdout).into_owned();
    assert!(
        nat.contains(&attachment.container_id),
        "portmap rules:\n{nat}"
    );

    network.del(&attachment).unwrap();
    let nat = run(Command::new("iptables").args(["-w", "-t", "nat", "-S"]));
    let nat = String::from_utf8_lossy(&nat.stdout).into_owned();
    assert!(
        !nat.contains(&attachment.container_id),
        "portmap DEL left rules:\n{nat}"
    );
    assert!(
        http_get(
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), host_port),
            Duration::ZERO
        )
        .is_err(),
        "the host port still answers after DEL"
    );
    assert!(world.allocated().is_empty());
}

#[test]
fn no_configuration_means_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let bins = cni::default_bin_dirs();
    let cache = dir.path().join("cache");
    assert!(
        Network::load(&dir.path().join("absent"), &bins, &cache)
            .unwrap()
            .is_none()
    );
    assert!(Network::load(dir.path(), &bins, &cache).unwrap().is_none());
}

#[test]
fn the_shipped_example_is_what_the_docs_say() {
    let config = NetworkConfig::from_file(&example_conflist()).unwrap();
    assert_eq!(config.name, "podvisor");
    assert_eq!(config.cni_version, "1.0.0");
    let types: Vec<_> = config
        .plugins
        .iter()
        .map(|p| p.plugin_type.as_str())
        .collect();
    assert_eq!(types, ["bridge", "portmap"]);
    let bridge = &config.plugins[0].raw;
    assert_eq!(bridge["bridge"], "podvisor0");
    assert_eq!(bridge["isGateway"], true);
    assert_eq!(bridge["ipMasq"], false);
    assert_eq!(bridge["hairpinMode"], true);
    assert_eq!(bridge["ipam"]["type"], "host-local");
    assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.222.0.0/24");
    assert_eq!(config.plugins[1].capabilities, ["portMappings"]);

    let missing = prerequisites(false);
    require!(missing.is_ok(), missing.unwrap_err());
    let dir = tempfile::tempdir().unwrap();
    let network = Network::load(
        example_conflist().parent().unwrap(),
        &cni::default_bin_dirs(),
        dir.path(),
    )
    .unwrap()
    .expect("examples/cni holds a configuration");
    assert_eq!(network.name(), "podvisor");
    assert!(network.plugin_paths().iter().all(|p| p.is_file()));
    let line = network.to_string();
    assert!(line.starts_with("network \"podvisor\" from "), "{line}");
    assert!(
        line.ends_with("10-podvisor.conflist (bridge, portmap)"),
        "{line}"
    );
}
