//! Protocol tests against fake plugins (shell scripts that record what they
//! get and print a canned result); no root needed. The real Debian plugins
//! are exercised by supervisor/tests/cni.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
}

const RESULT_A: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],"ips":[{"interface":0,"address":"10.9.0.2/24","gateway":"10.9.0.1"}]}"#;
const RESULT_B: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],"ips":[{"interface":0,"address":"10.9.0.2/24","gateway":"10.9.0.1"}],"dns":{"nameservers":["10.9.0.1"]}}"#;

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["bin", "log", "conf", "cache"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Fixture { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// A plugin that records stdin and CNI_* env as `<n>-<name>-<CMD>.*`,
    /// prints `add_output` on ADD and fails with a CNI error on `fail_on`.
    fn plugin(&self, name: &str, add_output: &str, fail_on: &str) {
        let log = self.path("log");
        let script = format!(
            r#"#!/bin/sh
log={log}
n=$(cat "$log/counter" 2>/dev/null || echo 0); echo $((n+1)) > "$log/counter"
cat > "$log/$n-{name}-$CNI_COMMAND.stdin"
env | grep '^CNI_' | sort > "$log/$n-{name}-$CNI_COMMAND.env"
if [ "$CNI_COMMAND" = "{fail_on}" ]; then
  echo '{{"cniVersion":"1.0.0","code":11,"msg":"{name} refuses","details":"as asked"}}'
  exit 1
fi
if [ "$CNI_COMMAND" = ADD ]; then printf '%s' '{add_output}'; fi
"#,
            log = log.display()
        );
        let path = self.path("bin").join(name);
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn conflist(&self, text: &str) -> Network {
        fs::write(self.path("conf").join("10-fake.conflist"), text).unwrap();
        Network::load(&self.path("conf"), &[self.path("bin")], &self.path("cache"))
            .unwrap()
            .expect("a config was written")
    }

    /// (plugin, command) of every run so far, in order.
    fn runs(&self) -> Vec<(String, String)> {
        let mut names: Vec<String> = fs::read_dir(self.path("log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter_map(|n| n.strip_suffix(".stdin").map(str::to_owned))
            .collect();
        names.sort_by_key(|n| n.split('-').next().unwrap().parse::<u32>().unwrap());
        names
            .iter()
            .map(|n| {
                let mut parts = n.splitn(3, '-').skip(1);
                (parts.next().unwrap().into(), parts.next().unwrap().into())
            })
            .collect()
    }

    fn stdin_of(&self, run: usize) -> Value {
        let name = self.find(run, "stdin");
        serde_json::from_slice(&fs::read(name).unwrap()).unwrap()
    }

    fn env_of(&self, run: usize) -> String {
        fs::read_to_string(self.find(run, "env")).unwrap()
    }

    fn find(&self, run: usize, ext: &str) -> PathBuf {
        fs::read_dir(self.path("log"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(&format!("{run}-")) && name.ends_with(ext)
            })
            .unwrap()
    }
}

fn attachment() -> Attachment {
    Attachment {
        container_id: "abc123".into(),
        netns: "/run/netns/x".into(),
        ifname: DEFAULT_IFNAME.into(),
        pod_name: "web".into(),
        pod_namespace: "default".into(),
        pod_uid: Some("u-1".into()),
        port_mappings: vec![PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: None,
        }],
    }
}

const TWO_PLUGINS: &str = r#"{"cniVersion":"1.0.0","name":"fake","plugins":[
    {"type":"a","foo":1},
    {"type":"b","capabilities":{"portMappings":true}}]}"#;

#[test]
fn add_chains_prev_result_and_injects_list_fields() {
    let fx = Fixture::new();
    fx.plugin("a", RESULT_A, "none");
    fx.plugin("b", RESULT_B, "none");
    let net = fx.conflist(TWO_PLUGINS);
    let result = net.add(&attachment()).unwrap();
    assert_eq!(
        result.dns.nameservers,
        ["10.9.0.1"],
        "the last plugin's result wins"
    );
    assert_eq!(result.pod_ips(), ["10.9.0.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        fx.runs(),
        [("a".into(), "ADD".into()), ("b".into(), "ADD".into())]
    );

    let a_in = fx.stdin_of(0);
    assert_eq!(a_in["name"], "fake");
    assert_eq!(a_in["cniVersion"], "1.0.0");
    assert_eq!(a_in["foo"], 1);
    assert!(a_in.get("prevResult").is_none());
    assert!(
        a_in.get("runtimeConfig").is_none(),
        "a declares no capability"
    );

    let b_in = fx.stdin_of(1);
    assert_eq!(
        b_in["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert_eq!(
        b_in["runtimeConfig"],
        serde_json::json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    );

    let env = fx.env_of(1);
    for line in [
        "CNI_COMMAND=ADD",
        "CNI_CONTAINERID=abc123",
        "CNI_NETNS=/run/netns/x",
        "CNI_IFNAME=eth0",
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in\n{env}");
    }
    assert!(env.contains(&format!("CNI_PATH={}", fx.path("bin").display())));

    let cached = net.cached_result(&attachment()).unwrap().unwrap();
    assert_eq!(cached, result);
    assert!(fx.path("cache").join("fake-abc123-eth0").is_file());
}

#[test]
fn del_runs_in_reverse_with_the_cached_result_then_forgets_it() {
    let fx = Fixture::new();
    fx.plugin("a", RESULT_A, "none");
    fx.plugin("b", RESULT_B, "none");
    let net = fx.conflist(TWO_PLUGINS);
    net.add(&attachment()).unwrap();
    net.check(&attachment()).unwrap();
    net.del(&attachment()).unwrap();
    let runs = fx.runs();
    let expected: Vec<(String, String)> = [
        ("a", "ADD"),
        ("b", "ADD"),
        ("a", "CHECK"),
        ("b", "CHECK"),
        ("b", "DEL"),
        ("a", "DEL"),
    ]
    .iter()
    .map(|(p, c)| ((*p).into(), (*c).into()))
    .collect();
    assert_eq!(runs, expected);
    let cached: Value = serde_json::from_str(RESULT_B).unwrap();
    for run in 2..6 {
        assert_eq!(fx.stdin_of(run)["prevResult"], cached, "run {run}");
    }
    assert!(fx.env_of(4).contains("CNI_COMMAND=DEL"));
    assert!(!fx.path("cache").join("fake-abc123-eth0").exists());
    assert!(net.cached_result(&attachment()).unwrap().is_none());

    // A second DEL is fine and carries no prevResult.
    net.del(&attachment()).unwrap();
    assert!(fx.stdin_of(6).get("prevResult").is_none());
    // CHECK of something not attached says so.
    let err = net.check(&attachment()).unwrap_err();
    assert!(matches!(err, CniError::NotAttached { .. }), "{err}");
}

#[test]
fn a_failing_plugin_reports_its_message_and_add_is_rolled_back() {
    let fx = Fixture::new();
    fx.plugin("a", RESULT_A, "none");
    fx.plugin("b", RESULT_B, "ADD");
    let net = fx.conflist(TWO_PLUGINS);
    let err = net.add(&attachment()).unwrap_err();
    match &err {
        CniError::Plugin {
            network,
            plugin,
            command,
            source: ExecError::Plugin { code, msg, details },
        } => {
            assert_eq!(network, "fake");
            assert_eq!(plugin, "b");
            assert_eq!(*command, Command::Add);
            assert_eq!(*code, 11);
            assert_eq!(msg, "b refuses");
            assert_eq!(details.as_deref(), Some("as asked"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "network \"fake\": CNI plugin b ADD failed: error code 11: b refuses (as asked)"
    );
    let commands: Vec<_> = fx
        .runs()
        .into_iter()
        .map(|(p, c)| format!("{p} {c}"))
        .collect();
    assert_eq!(commands, ["a ADD", "b ADD", "b DEL", "a DEL"]);
    assert!(!fx.path("cache").join("fake-abc123-eth0").exists());
}

#[test]
fn a_failing_rollback_is_reported_with_the_add_error() {
    let fx = Fixture::new();
    fx.plugin("a", RESULT_A, "DEL");
    fx.plugin("b", RESULT_B, "ADD");
    let net = fx.conflist(TWO_PLUGINS);
    let err = net.add(&attachment()).unwrap_err();
    assert!(matches!(err, CniError::Rollback { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("b refuses") && text.contains("a refuses"),
        "{text}"
    );
}

#[test]
fn missing_plugins_and_configs() {
    let fx = Fixture::new();
    let none = Network::load(&fx.path("conf"), &[fx.path("bin")], &fx.path("cache")).unwrap();
    assert!(none.is_none(), "an empty conf dir is no network");
    let absent = Network::load(&fx.path("nope"), &[fx.path("bin")], &fx.path("cache")).unwrap();
    assert!(absent.is_none(), "a missing conf dir is no network");

    fx.plugin("a", RESULT_A, "none");
    fs::write(fx.path("conf").join("10-fake.conflist"), TWO_PLUGINS).unwrap();
    let bins = [fx.path("empty"), fx.path("bin")];
    let err = Network::load(&fx.path("conf"), &bins, &fx.path("cache")).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, CniError::PluginNotFound { plugin, .. } if plugin == "b"),
        "{text}"
    );
    assert!(text.contains("10-fake.conflist"), "{text}");
    assert!(
        text.contains(&format!(
            "{}:{}",
            fx.path("empty").display(),
            fx.path("bin").display()
        )),
        "{text}"
    );

    fs::write(
        fx.path("conf").join("05-broken.conf"),
        r#"{"name":"x","type":"a"}"#,
    )
    .unwrap();
    let err = Network::load(&fx.path("conf"), &bins, &fx.path("cache")).unwrap_err();
    assert!(
        err.to_string()
            .contains("05-broken.conf: field `cniVersion`: is required"),
        "{err}"
    );
}

#[test]
fn attachments_are_validated_before_any_plugin_runs() {
    let fx = Fixture::new();
    fx.plugin("a", RESULT_A, "none");
    let net = fx.conflist(r#"{"cniVersion":"1.0.0","name":"fake","type":"a"}"#);
    type Spoil = fn(&mut Attachment);
    let cases: [(Spoil, &str); 5] = [
        (|a| a.container_id = "-x".into(), "container_id"),
        (|a| a.container_id = "a/b".into(), "container_id"),
        (|a| a.ifname = "averyveryverylongname".into(), "ifname"),
        (|a| a.netns = "relative".into(), "netns"),
        (|a| a.pod_name = "a;b=c".into(), "pod_name"),
    ];
    for (spoil, field) in cases {
        let mut a = attachment();
        spoil(&mut a);
        let err = net.add(&a).unwrap_err();
        assert!(
            matches!(&err, CniError::Attachment { field: f, .. } if *f == field),
            "{err}"
        );
    }
    assert!(fx.runs().is_empty());
}

#[test]
fn a_cache_entry_rebuilds_the_network_that_added() {
    let fx = Fixture::new();
    fx.plugin("a", RESULT_A, "none");
    fx.plugin("b", RESULT_B, "none");
    let net = fx.conflist(TWO_PLUGINS);
    net.add(&attachment()).unwrap();
    // The conf dir changes (or disappears) before the teardown.
    fs::remove_file(fx.path("conf").join("10-fake.conflist")).unwrap();
    let entries = cache::list(&fx.path("cache")).unwrap();
    assert_eq!(entries.len(), 1);
    let entry = entries[0].1.as_ref().unwrap();
    assert_eq!(entry.attachment, attachment());
    let again = Network::from_cache(entry, &[fx.path("bin")], &fx.path("cache")).unwrap();
    assert_eq!(again.name(), "fake");
    again.del(&entry.attachment).unwrap();
    let commands: Vec<_> = fx
        .runs()
        .into_iter()
        .map(|(p, c)| format!("{p} {c}"))
        .collect();
    assert_eq!(commands, ["a ADD", "b ADD", "b DEL", "a DEL"]);
    assert!(cache::list(&fx.path("cache")).unwrap().is_empty());
}

#[test]
fn check_is_skipped_when_disabled_and_refused_before_0_4() {
    let fx = Fixture::new();
    fx.plugin("a", RESULT_A, "CHECK");
    let net = fx.conflist(r#"{"cniVersion":"1.0.0","name":"fake","disableCheck":true,"type":"a"}"#);
    net.add(&attachment()).unwrap();
    net.check(&attachment()).unwrap();
    let old = fx.conflist(r#"{"cniVersion":"0.3.1","name":"old","type":"a"}"#);
    let err = old.check(&attachment()).unwrap_err();
    assert!(matches!(err, CniError::CheckUnsupported { .. }), "{err}");
}
