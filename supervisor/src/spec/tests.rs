//! Unit tests of validation, defaults and resolution.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

const EXAMPLE: &str = include_str!("../../../examples/pod.yaml");

fn pod(yaml: &str) -> PodSpec {
    match load_str("t.yaml", yaml) {
        Ok(l) => l.pod,
        Err(e) => panic!("{e}"),
    }
}

fn err(yaml: &str) -> String {
    load_str("t.yaml", yaml)
        .expect_err("must be refused")
        .to_string()
}

/// A minimal pod around one container body (indented 4 spaces).
fn with_container(body: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [/bin/true]\n{body}"
    )
}

#[test]
fn the_example_loads_with_everything_resolved() {
    let loaded = load_str("examples/pod.yaml", EXAMPLE).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let p = loaded.pod;
    assert_eq!(p.name, "web");
    assert_eq!(p.namespace, "default");
    assert_eq!(p.hostname, "web");
    assert_eq!(p.restart_policy, RestartPolicy::Always);
    assert_eq!(p.termination_grace_period, Duration::from_secs(10));
    let web = &p.containers[0];
    assert_eq!(web.resources.limits.memory_limit_bytes, Some(64 << 20));
    assert_eq!(web.resources.memory_request_bytes, Some(16 << 20));
    assert_eq!(web.resources.limits.cpu_limit_millis, Some(250));
    assert_eq!(web.resources.limits.cpu_request_millis, Some(50));
    let env = web.env(&RuntimeValues::default());
    assert_eq!(env, vec![("PORT".to_owned(), "8080".to_owned())]);
    let argv = web.argv(&env, &[], &[]);
    assert_eq!(argv[0], "/bin/busybox");
    assert!(argv[3].contains("-p 8080 -h /www"), "{argv:?}");
    let Some(Probe {
        handler: Handler::HttpGet { port, path, .. },
        period,
        ..
    }) = web.readiness_probe.as_deref()
    else {
        panic!("{:?}", web.readiness_probe)
    };
    assert_eq!(
        (*port, path.as_str(), *period),
        (8080, "/", Duration::from_secs(5))
    );
    let reader = &p.containers[1];
    assert!(reader.mounts[0].read_only);
    assert_eq!(reader.mounts[0].mount_path, PathBuf::from("/var/log/web"));
    let Some(Volume {
        source: VolumeSource::Files { files, .. },
        ..
    }) = p.volume("content")
    else {
        panic!()
    };
    assert_eq!(files[0].path, PathBuf::from("index.html"));
    assert_eq!(files[0].mode, 0o644);
    let FileContent::Data(data) = &files[0].content else {
        panic!("{:?}", files[0].content)
    };
    assert!(String::from_utf8_lossy(data).contains("Hello from a ConfigMap"));
    assert_eq!(
        p.volume("logs").unwrap().source,
        VolumeSource::EmptyDir {
            memory: false,
            size_limit: None
        }
    );
}

#[test]
fn deployment_template_with_replicas_warns_once() {
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata:\n      labels: {app: d}\n    spec:\n      nodeSelector: {disk: ssd}\n      containers:\n      - name: c\n        image: busybox:1.36\n        command: [/bin/true]\n        terminationMessagePath: /x\n";
    let l = load_str("d.yaml", yaml).unwrap();
    assert_eq!(l.pod.name, "d");
    assert_eq!(l.pod.labels["app"], "d");
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("replicas is 3"));
    assert!(l.warnings[1].contains("spec.selector"));
    assert!(l.warnings[1].contains("spec.template.spec.nodeSelector"));
    assert!(l.warnings[1].contains("spec.template.spec.containers[0].terminationMessagePath"));
}

#[test]
fn errors_in_a_template_carry_the_template_path() {
    let yaml = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: busybox:1.36\n        command: [/bin/true]\n        resources: {limits: {memory: 1Xi}}\n";
    let e = err(yaml);
    assert!(e.contains("document 1 (StatefulSet s): spec.template.spec.containers[0].resources.limits.memory = \"1Xi\""), "{e}");
}

#[test]
fn env_follows_kubernetes_order_sources_and_expansion() {
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {A: a, B: b}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {PASS: aHVudGVyMg==}\nstringData: {USER: bob}\n---\n".to_owned()
        + &with_container(concat!(
            "    args: [\"$(GREETING)\", \"$$(GREETING)\", \"$(NOPE)\"]\n",
            "    envFrom:\n    - configMapRef: {name: cm}\n      prefix: CM_\n    - secretRef: {name: missing, optional: true}\n",
            "    env:\n",
            "    - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n",
            "    - {name: GREETING, value: \"hi $(NAME) $(CM_A) $(LATER)\"}\n",
            "    - {name: LATER, value: x}\n",
            "    - {name: PW, valueFrom: {secretKeyRef: {name: s, key: PASS}}}\n",
            "    - {name: U, valueFrom: {secretKeyRef: {name: s, key: USER}}}\n",
            "    - {name: GONE, valueFrom: {configMapKeyRef: {name: cm, key: Z, optional: true}}}\n",
            "    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n",
            "    - {name: URL, value: \"http://$(IP):80\"}\n",
        ));
    let p = pod(&yaml);
    let c = &p.containers[0];
    let rt = RuntimeValues {
        pod_ips: vec!["10.0.0.7".into()],
        ..Default::default()
    };
    let env = c.env(&rt);
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "CM_A", "CM_B", "NAME", "GREETING", "LATER", "PW", "U", "IP", "URL"
        ]
    );
    let get = |k: &str| env.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("GREETING"), "hi p a $(LATER)");
    assert_eq!(get("PW"), "hunter2");
    assert_eq!(get("U"), "bob");
    assert_eq!(get("URL"), "http://10.0.0.7:80");
    assert_eq!(
        c.argv(&env, &[], &[]),
        ["/bin/true", "hi p a $(LATER)", "$(GREETING)", "$(NOPE)"]
    );
}

#[test]
fn security_contexts_merge_container_over_pod() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsUser: 1000, runAsGroup: 1000, supplementalGroups: [5, 6], fsGroup: 2000}\n  containers:\n  - name: a\n    image: busybox:1.36\n    command: [/bin/true]\n    securityContext:\n      runAsUser: 1001\n      runAsNonRoot: true\n      allowPrivilegeEscalation: false\n      readOnlyRootFilesystem: true\n      capabilities: {drop: [ALL], add: [net_bind_service, CAP_CHOWN]}\n  - name: b\n    image: busybox:1.36\n    command: [/bin/true]\n";
    let p = pod(yaml);
    let a = &p.containers[0].security;
    assert_eq!((a.run_as_user, a.run_as_group), (Some(1001), Some(1000)));
    assert!(a.run_as_non_root && !a.allow_privilege_escalation && a.read_only_root_filesystem);
    assert_eq!(a.supplemental_groups, [5, 6, 2000]);
    assert_eq!(a.capabilities.add, ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]);
    assert_eq!(a.capabilities.effective_mask(), (1 << 10) | 1);
    let b = &p.containers[1].security;
    assert_eq!(b.run_as_user, Some(1000));
    assert!(b.allow_privilege_escalation);
    assert_eq!(p.fs_group, Some(2000));
    let default_mask = b.capabilities.effective_mask();
    assert_eq!(default_mask.count_ones(), 14);
}

#[test]
fn capability_mask_follows_containerd() {
    let caps = |add: &[&str], drop: &[&str]| Capabilities {
        add: add.iter().map(|s| s.to_string()).collect(),
        drop: drop.iter().map(|s| s.to_string()).collect(),
    };
    let all = (1u64 << 41) - 1;
    assert_eq!(caps(&["ALL"], &["CAP_CHOWN"]).effective_mask(), all & !1);
    assert_eq!(caps(&["ALL"], &["ALL"]).effective_mask(), 0);
    assert_eq!(caps(&["CAP_SYS_ADMIN"], &["ALL"]).effective_mask(), 1 << 21);
}

#[test]
fn defaults_apply() {
    let p = pod(&with_container(concat!(
        "    livenessProbe: {exec: {command: [/bin/true]}}\n",
        "    ports: [{containerPort: 80, name: web}]\n",
        "    resources: {limits: {memory: 100Mi, cpu: \"0.5\"}}\n",
    )));
    assert_eq!(p.restart_policy, RestartPolicy::Always);
    assert_eq!(p.termination_grace_period, Duration::from_secs(30));
    assert!(!p.host_network && !p.share_process_namespace);
    let c = &p.containers[0];
    assert_eq!(c.kind, ContainerKind::Regular);
    assert_eq!(c.stop_signal, nix::sys::signal::Signal::SIGTERM);
    let probe = c.liveness_probe.as_ref().unwrap();
    assert_eq!(
        (
            probe.initial_delay,
            probe.timeout,
            probe.period,
            probe.success_threshold,
            probe.failure_threshold
        ),
        (
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(10),
            1,
            3
        )
    );
    assert_eq!(c.ports[0].protocol, Protocol::Tcp);
    assert_eq!(c.ports[0].host_port, None);
    // Requests default to limits.
    assert_eq!(c.resources.memory_request_bytes, Some(104_857_600));
    assert_eq!(c.resources.limits.cpu_request_millis, Some(500));
}

#[test]
fn host_network_defaults_host_ports() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  hostname: h\n  subdomain: s\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [/bin/true]\n    ports: [{containerPort: 8080}]\n";
    let p = pod(yaml);
    assert!(p.host_network);
    assert_eq!(
        (p.hostname.as_str(), p.subdomain.as_deref()),
        ("h", Some("s"))
    );
    assert_eq!(p.containers[0].ports[0].host_port, Some(8080));
}

#[test]
fn sidecars_are_init_containers_with_restart_policy_always() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - {name: setup, image: busybox:1.36, command: [/bin/true]}\n  - name: proxy\n    image: busybox:1.36\n    command: [/bin/sleep, inf]\n    restartPolicy: Always\n    startupProbe: {exec: {command: [/bin/true]}}\n    lifecycle: {preStop: {sleep: {seconds: 1}}}\n  containers:\n  - {name: app, image: busybox:1.36, command: [/bin/true]}\n";
    let p = pod(yaml);
    let kinds: Vec<ContainerKind> = p.init_containers.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ContainerKind::Init, ContainerKind::Sidecar]);
    assert!(p.init_containers[1].startup_probe.is_some());
    for (policy, field) in [
        ("Never", "initContainers[0]"),
        ("OnFailure", "initContainers[0]"),
    ] {
        let bad = yaml.replacen(
            "command: [/bin/true]}\n  - name: proxy",
            &format!("command: [/bin/true], restartPolicy: {policy}}}\n  - name: proxy"),
            1,
        );
        let error = load_str("p.yaml", &bad).unwrap_err().to_string();
        assert!(
            error.contains(&format!("spec.{field}.restartPolicy = \"{policy}\": an init container's restartPolicy can only be Always")),
            "{error}"
        );
    }
    let hooked_init = yaml.replacen(
        "command: [/bin/true]}\n  - name: proxy",
        "command: [/bin/true], lifecycle: {postStart: {sleep: {seconds: 1}}}}\n  - name: proxy",
        1,
    );
    let error = load_str("p.yaml", &hooked_init).unwrap_err().to_string();
    assert!(
        error.contains("spec.initContainers[0].lifecycle: not allowed on an init container"),
        "{error}"
    );
}

#[test]
fn lifecycle_hooks_are_validated_as_kubernetes_does() {
    let hooks = "    ports: [{name: http, containerPort: 8080}]\n    lifecycle:\n      postStart: {exec: {command: [/bin/sh, -c, 'echo up']}}\n      preStop: {httpGet: {path: down, port: http}}\n";
    let p = pod(&with_container(hooks));
    let c = &p.containers[0];
    assert_eq!(
        c.post_start.as_deref(),
        Some(&Handler::Exec {
            command: vec!["/bin/sh".into(), "-c".into(), "echo up".into()]
        })
    );
    assert!(
        matches!(c.pre_stop.as_deref(), Some(Handler::HttpGet { port: 8080, path, host: None, .. }) if path == "/down")
    );
    let sleep = pod(&with_container(
        "    lifecycle: {preStop: {sleep: {seconds: 0}}}\n",
    ));
    assert_eq!(
        sleep.containers[0].pre_stop.as_deref(),
        Some(&Handler::Sleep {
            duration: Duration::ZERO
        })
    );
    for (body, expected) in [
        (
            "    lifecycle: {preStop: {sleep: {seconds: 31}}}\n",
            "spec.containers[0].lifecycle.preStop.sleep.seconds = \"31\": must be non-negative and at most terminationGracePeriodSeconds (30)",
        ),
        (
            "    lifecycle: {postStart: {tcpSocket: {port: 80}}}\n",
            "spec.containers[0].lifecycle.postStart.tcpSocket: not supported for lifecycle hooks",
        ),
        (
            "    lifecycle: {postStart: {}}\n",
            "spec.containers[0].lifecycle.postStart: needs exactly one of exec, httpGet and sleep",
        ),
        (
            "    lifecycle: {preStop: {exec: {command: []}}}\n",
            "spec.containers[0].lifecycle.preStop.exec.command: missing",
        ),
    ] {
        let error = load_str("p.yaml", &with_container(body))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn volume_items_modes_and_optional_objects() {
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.key: a2V5, tls.crt: Y3J0}\n---\n".to_owned()
        + &with_container("")
        + "  volumes:\n  - name: certs\n    secret:\n      secretName: s\n      defaultMode: 0400\n      items:\n      - {key: tls.key, path: private/key.pem}\n      - {key: tls.crt, path: cert.pem, mode: 0444}\n  - name: opt\n    configMap: {name: nothere, optional: true}\n  - name: mem\n    emptyDir: {medium: Memory, sizeLimit: 64Mi}\n  - name: bare\n  - name: host\n    hostPath: {path: /var/lib/x/, type: DirectoryOrCreate}\n";
    let p = pod(&yaml);
    let VolumeSource::Files { files, origin } = &p.volume("certs").unwrap().source else {
        panic!()
    };
    assert_eq!(*origin, FilesOrigin::Secret("s".into()));
    assert_eq!(files[0].path, PathBuf::from("private/key.pem"));
    assert_eq!(
        (&files[0].content, files[0].mode),
        (&FileContent::Data(b"key".to_vec()), 0o400)
    );
    assert_eq!(
        (&files[1].content, files[1].mode),
        (&FileContent::Data(b"crt".to_vec()), 0o444)
    );
    let VolumeSource::Files { files, .. } = &p.volume("opt").unwrap().source else {
        panic!()
    };
    assert!(files.is_empty());
    assert_eq!(
        p.volume("mem").unwrap().source,
        VolumeSource::EmptyDir {
            memory: true,
            size_limit: Some(64 << 20)
        }
    );
    assert_eq!(
        p.volume("bare").unwrap().source,
        VolumeSource::EmptyDir {
            memory: false,
            size_limit: None
        }
    );
    assert_eq!(
        p.volume("host").unwrap().source,
        VolumeSource::HostPath {
            path: PathBuf::from("/var/lib/x"),
            kind: HostPathType::DirectoryOrCreate
        }
    );
}

#[test]
fn other_kinds_are_listed_in_one_warning() {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\nspec: {}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: ing}\n---\n".to_owned()
        + &with_container("");
    let l = load_str("t.yaml", &yaml).unwrap();
    assert_eq!(
        l.warnings,
        [
            "t.yaml: ignored (not run by a single-host supervisor): Ingress ing, Service svc (ClusterIP)"
        ]
    );
}

#[test]
fn base64_is_strict() {
    use super::documents::base64_decode;
    assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(base64_decode("aGVs\nbG8h").unwrap(), b"hello!");
    assert_eq!(base64_decode("").unwrap(), b"");
    assert!(base64_decode("aGVsbG8").is_err());
    assert!(base64_decode("aG=sbG8=").is_err());
    assert!(base64_decode("aGVs*G8=").is_err());
}

#[test]
fn dns_labels() {
    use super::names::is_dns_label;
    for ok in ["a", "web", "a-1", "0", &"a".repeat(63)] {
        assert!(is_dns_label(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64), "../x"] {
        assert!(!is_dns_label(bad), "{bad}");
    }
}

#[test]
fn security_profiles_container_level_wins_then_annotation_then_pod() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/b: localhost/k8s-b\nspec:\n  securityContext:\n    seccompProfile: {type: Localhost, localhostProfile: profiles/pod.json}\n    appArmorProfile: {type: Unconfined}\n  containers:\n  - name: a\n    image: busybox\n    securityContext:\n      seccompProfile: {type: Unconfined}\n      appArmorProfile: {type: Localhost, localhostProfile: k8s-a}\n  - name: b\n    image: busybox\n  - name: c\n    image: busybox\n";
    let p = pod(yaml);
    let [a, b, c] = [&p.containers[0], &p.containers[1], &p.containers[2]];
    let kind = |p: &Option<Profile>| p.as_ref().map(|p| p.kind.clone());
    assert_eq!(kind(&a.security.seccomp), Some(ProfileKind::Unconfined));
    assert_eq!(
        kind(&a.security.apparmor),
        Some(ProfileKind::Localhost("k8s-a".into()))
    );
    assert_eq!(
        kind(&b.security.seccomp),
        Some(ProfileKind::Localhost("profiles/pod.json".into()))
    );
    assert_eq!(
        b.security.seccomp.as_ref().unwrap().field,
        "spec.securityContext.seccompProfile"
    );
    assert_eq!(
        kind(&b.security.apparmor),
        Some(ProfileKind::Localhost("k8s-b".into()))
    );
    assert_eq!(kind(&c.security.apparmor), Some(ProfileKind::Unconfined));
    let unset = pod(&with_container(""));
    assert_eq!(unset.containers[0].security.seccomp, None);
    assert_eq!(unset.containers[0].security.apparmor, None);
}

#[test]
fn bad_security_profiles_name_the_field_and_value() {
    for (body, want) in [
        (
            "    securityContext:\n      seccompProfile: {type: Localhost}\n",
            "seccompProfile.localhostProfile",
        ),
        (
            "    securityContext:\n      seccompProfile: {type: Localhost, localhostProfile: /etc/x.json}\n",
            "/etc/x.json",
        ),
        (
            "    securityContext:\n      seccompProfile: {type: Localhost, localhostProfile: ../x.json}\n",
            "clean relative path",
        ),
        (
            "    securityContext:\n      seccompProfile: {type: RuntimeDefault, localhostProfile: x.json}\n",
            "only be set when type is Localhost",
        ),
        (
            "    securityContext:\n      seccompProfile: {type: Strict}\n",
            "seccompProfile.type",
        ),
        (
            "    securityContext:\n      appArmorProfile: {type: Localhost, localhostProfile: two words}\n",
            "appArmorProfile.localhostProfile",
        ),
        (
            "    securityContext:\n      appArmorProfile: {}\n",
            "appArmorProfile.type",
        ),
    ] {
        let e = err(&with_container(body));
        assert!(e.contains(want), "{body}: {e}");
    }
    let e = err(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    container.apparmor.security.beta.kubernetes.io/c: strict\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
    );
    assert!(
        e.contains("container.apparmor.security.beta.kubernetes.io/c") && e.contains("strict"),
        "{e}"
    );
}

/// The files of volume `name` of `p`, contents rendered for `node`.
fn volume_files(p: &PodSpec, name: &str, node: &NodeAllocatable) -> Vec<(String, String, u32)> {
    let VolumeSource::Files { files, .. } = &p.volume(name).unwrap().source else {
        panic!("{name} is not a files volume")
    };
    files
        .iter()
        .map(|f| {
            let text = match &f.content {
                FileContent::Data(d) => String::from_utf8(d.clone()).unwrap(),
                FileContent::Resource(r) => r.value(node),
            };
            (f.path.display().to_string(), text, f.mode)
        })
        .collect()
}

const NODE: NodeAllocatable = NodeAllocatable {
    cpu_millis: 8000,
    memory_bytes: 16 << 30,
    ephemeral_storage_bytes: 1 << 40,
};

#[test]
fn downward_api_volumes_write_pod_fields_and_resources() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns\n  labels: {b: two, a: one}\n  annotations: {note: \"say \\\"hi\\\"\"}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources: {limits: {cpu: 250m, memory: 100Mi}}\n  - name: d\n    image: busybox\n  volumes:\n  - name: info\n    downwardAPI:\n      defaultMode: 0600\n      items:\n      - {path: name, fieldRef: {fieldPath: metadata.name}}\n      - {path: ns, fieldRef: {fieldPath: metadata.namespace}}\n      - {path: uid, fieldRef: {fieldPath: metadata.uid}}\n      - {path: labels, fieldRef: {fieldPath: metadata.labels}, mode: 0644}\n      - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}\n      - {path: a, fieldRef: {fieldPath: \"metadata.labels['a']\"}}\n      - {path: cpu, resourceFieldRef: {containerName: c, resource: limits.cpu}}\n      - {path: cpu-m, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}}\n      - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}\n      - {path: d/mem, resourceFieldRef: {containerName: d, resource: limits.memory, divisor: 1Gi}}\n      - {path: d/req, resourceFieldRef: {containerName: d, resource: requests.cpu}}\n";
    let p = pod(yaml);
    let uid = crate::paths::PodId::new("ns", "p").unwrap().uid();
    let files = volume_files(&p, "info", &NODE);
    let expected: Vec<(String, String, u32)> = [
        ("name", "p", 0o600),
        ("ns", "ns", 0o600),
        ("uid", uid.as_str(), 0o600),
        ("labels", "a=\"one\"\nb=\"two\"", 0o644),
        ("annotations", "note=\"say \\\"hi\\\"\"", 0o600),
        ("a", "one", 0o600),
        // 250m with the default divisor 1 rounds up to one core.
        ("cpu", "1", 0o600),
        ("cpu-m", "250", 0o600),
        ("mem", "100", 0o600),
        // d has no limit: the node's (16Gi); no request: 0.
        ("d/mem", "16", 0o600),
        ("d/req", "0", 0o600),
    ]
    .into_iter()
    .map(|(a, b, m)| (a.to_owned(), b.to_owned(), m))
    .collect();
    assert_eq!(files, expected);
}

#[test]
fn env_resource_field_refs_read_their_own_container_by_default() {
    let p = pod(&with_container(
        "    resources: {limits: {memory: 1Gi, cpu: 1500m}, requests: {memory: 100Mi}}\n    env:\n    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}\n    - {name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}\n    - {name: REQ, valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1M}}}\n    - {name: REQ_CPU, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}\n    - {name: STORAGE, valueFrom: {resourceFieldRef: {resource: limits.ephemeral-storage, divisor: 1Gi}}}\n    - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}\n",
    ));
    let rt = RuntimeValues {
        node: NODE,
        ..RuntimeValues::default()
    };
    let env = p.containers[0].env(&rt);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("MEM").as_deref(), Some("1024"));
    assert_eq!(get("CPU").as_deref(), Some("2"));
    // 100Mi = 104857600 bytes = 104.8576 M, rounded up.
    assert_eq!(get("REQ").as_deref(), Some("105"));
    // A request defaults to the limit (the API server's defaulting).
    assert_eq!(get("REQ_CPU").as_deref(), Some("1500"));
    assert_eq!(get("STORAGE").as_deref(), Some("1024"));
    let uid = crate::paths::PodId::new("default", "p").unwrap().uid();
    assert_eq!(get("UID"), Some(uid));
}

#[test]
fn resource_field_refs_are_checked() {
    let env = |r: &str| {
        with_container(&format!(
            "    env:\n    - {{name: X, valueFrom: {{resourceFieldRef: {r}}}}}\n"
        ))
    };
    let e = err(&env("{resource: limits.nvidia.com/gpu}"));
    assert!(
        e.contains("resourceFieldRef.resource = \"limits.nvidia.com/gpu\": supported: limits.cpu"),
        "{e}"
    );
    let e = err(&env("{containerName: nope, resource: limits.cpu}"));
    assert!(
        e.contains("resourceFieldRef.containerName = \"nope\": no container of this name"),
        "{e}"
    );
    let e = err(&env("{resource: limits.memory, divisor: 1m}"));
    assert!(
        e.contains("divisor = \"1m\": only divisor's values 1, 1k"),
        "{e}"
    );
    let e = err(&env("{resource: limits.memory, divisor: 2Mi}"));
    assert!(e.contains("divisor = \"2Mi\""), "{e}");
    // 1000m is 1; a zero divisor is none.
    pod(&env("{resource: limits.cpu, divisor: 1000m}"));
    pod(&env("{resource: limits.memory, divisor: \"0\"}"));
}

#[test]
fn projected_volumes_combine_their_sources() {
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {app.conf: x=1, other: o}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n---\n".to_owned()
        + &with_container("")
        + "  volumes:\n  - name: all\n    projected:\n      defaultMode: 0640\n      sources:\n      - configMap: {name: cm, items: [{key: app.conf, path: conf/app.conf}]}\n      - secret: {name: s, items: [{key: password, path: secret/password, mode: 0400}]}\n      - downwardAPI: {items: [{path: pod/name, fieldRef: {fieldPath: metadata.name}}]}\n      - configMap: {name: missing, optional: true}\n";
    let p = pod(&yaml);
    let VolumeSource::Files { origin, .. } = &p.volume("all").unwrap().source else {
        panic!()
    };
    assert_eq!(*origin, FilesOrigin::Projected);
    assert_eq!(
        volume_files(&p, "all", &NODE),
        vec![
            ("conf/app.conf".to_owned(), "x=1".to_owned(), 0o640),
            ("secret/password".to_owned(), "hunter2".to_owned(), 0o400),
            ("pod/name".to_owned(), "p".to_owned(), 0o640),
        ]
    );
    let e = err(&(with_container("")
        + "  volumes:\n  - name: v\n    projected:\n      sources:\n      - {}\n"));
    assert!(
        e.contains("projected.sources[0]: needs exactly one of configMap, secret and downwardAPI"),
        "{e}"
    );
    let e = err(&(with_container("")
        + "  volumes:\n  - name: v\n    downwardAPI:\n      items: [{path: ..x, fieldRef: {fieldPath: metadata.name}}]\n"));
    assert!(
        e.contains("items[0].path = \"..x\": must not start with '..'"),
        "{e}"
    );
    let e = err(&(with_container("")
        + "  volumes:\n  - name: v\n    downwardAPI:\n      items: [{path: x, fieldRef: {fieldPath: status.podIP}}]\n"));
    assert!(
        e.contains("fieldRef.fieldPath = \"status.podIP\": supported in a volume"),
        "{e}"
    );
}

#[test]
fn claims_and_sub_path_exprs() {
    let p = pod(&(with_container(
        "    volumeMounts:\n    - {name: data, mountPath: /data, subPathExpr: \"logs/$(POD)\"}\n    - {name: ro, mountPath: /ro}\n",
    ) + "  volumes:\n  - name: data\n    persistentVolumeClaim: {claimName: data.v1}\n  - name: ro\n    persistentVolumeClaim: {claimName: shared, readOnly: true}\n"));
    assert_eq!(
        p.volume("data").unwrap().source,
        VolumeSource::Claim {
            claim: "data.v1".into(),
            read_only: false
        }
    );
    assert_eq!(
        p.volume("ro").unwrap().source,
        VolumeSource::Claim {
            claim: "shared".into(),
            read_only: true
        }
    );
    let sub = p.containers[0].mounts[0].sub_path.clone().unwrap();
    assert_eq!(sub, SubPath::Expr("logs/$(POD)".into()));
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        sub.resolve(&env(&[("POD", "web-1")])),
        Ok(Some(PathBuf::from("logs/web-1")))
    );
    // kubelet: an unset or empty variable is an error naming it.
    for vars in [env(&[]), env(&[("POD", "")])] {
        assert_eq!(
            sub.resolve(&vars).unwrap_err().to_string(),
            "subPathExpr \"logs/$(POD)\": missing value for POD"
        );
    }
    let e = SubPath::Expr("$(X)".into())
        .resolve(&env(&[("X", "../etc")]))
        .unwrap_err();
    assert!(e.to_string().contains("must not contain '..'"), "{e}");
    let e = SubPath::Expr("$(X)".into())
        .resolve(&env(&[("X", "/etc")]))
        .unwrap_err();
    assert!(
        e.to_string().contains("must not be an absolute path"),
        "{e}"
    );
    let both = err(&(with_container(
        "    volumeMounts:\n    - {name: d, mountPath: /d, subPath: a, subPathExpr: b}\n",
    ) + "  volumes:\n  - name: d\n"));
    assert!(
        both.contains("subPathExpr = \"b\": subPathExpr and subPath are mutually exclusive"),
        "{both}"
    );
    let e = err(&(with_container("") + "  volumes:\n  - name: d\n    persistentVolumeClaim: {}\n"));
    assert!(
        e.contains("persistentVolumeClaim.claimName: missing"),
        "{e}"
    );
}

/// A Job around one container, with `spec` lines (indented 2 spaces).
fn job(spec: &str, restart_policy: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n{spec}  template:\n    spec:\n      restartPolicy: {restart_policy}\n      containers:\n      - name: c\n        image: busybox:1.36\n        command: [/bin/true]\n"
    )
}

#[test]
fn a_job_has_its_back_off_limit_and_deadline() {
    let p = pod(&job("", "Never"));
    assert_eq!(
        p.job,
        Some(JobSpec {
            backoff_limit: DEFAULT_BACKOFF_LIMIT,
            active_deadline: None
        })
    );
    let p = pod(&job(
        "  backoffLimit: 0\n  activeDeadlineSeconds: 30\n  completions: 1\n  parallelism: 1\n",
        "OnFailure",
    ));
    assert_eq!(
        p.job,
        Some(JobSpec {
            backoff_limit: 0,
            active_deadline: Some(Duration::from_secs(30))
        })
    );
    assert_eq!(p.restart_policy, RestartPolicy::OnFailure);
    // A Deployment is no Job.
    let d = pod(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: c, image: busybox:1.36}\n",
    );
    assert_eq!(d.job, None);
}

#[test]
fn job_fields_other_than_one_pod_are_refused_with_the_field_named() {
    for (spec, expected) in [
        (
            "  completions: 3\n",
            "spec.completions = \"3\": not supported: only 1",
        ),
        (
            "  parallelism: 2\n",
            "spec.parallelism = \"2\": not supported: only 1",
        ),
        (
            "  backoffLimit: -1\n",
            "spec.backoffLimit = \"-1\": must be >= 0",
        ),
        (
            "  activeDeadlineSeconds: -5\n",
            "spec.activeDeadlineSeconds = \"-5\": must be >= 0",
        ),
        (
            "  podFailurePolicy: {rules: []}\n",
            "spec.podFailurePolicy: not supported",
        ),
        ("  suspend: true\n", "spec.suspend: not supported"),
    ] {
        let e = err(&job(spec, "Never"));
        assert!(e.contains(expected), "{spec}: {e}");
        assert!(e.contains("document 1 (Job j)"), "{e}");
    }
    let e = err(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  activeDeadlineSeconds: 5\n  template:\n    spec:\n      containers:\n      - {name: c, image: busybox:1.36}\n",
    );
    assert!(e.contains("spec.activeDeadlineSeconds"), "{e}");
}

/// A pod labelled app=web with a named port, and a Service document.
fn with_service(service_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n{service_spec}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {{app: web, tier: front}}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    ports:\n    - {{name: http, containerPort: 8080}}\n    - {{name: dns, containerPort: 53, protocol: UDP}}\n"
    )
}

#[test]
fn a_load_balancer_service_publishes_its_port_to_the_target_port() {
    let p = pod(&with_service(
        "  type: LoadBalancer\n  selector: {app: web}\n  clusterIP: 10.43.0.10\n  ports:\n  - {name: web, port: 80, targetPort: http}\n  - {name: dns, port: 53, targetPort: 53, protocol: UDP, nodePort: 30053}\n",
    ));
    let published: Vec<_> = p
        .service_ports
        .iter()
        .map(|s| (s.host_port, s.container_port, s.protocol, s.service_type))
        .collect();
    assert_eq!(
        published,
        [
            (80, 8080, Protocol::Tcp, ServiceType::LoadBalancer),
            (53, 53, Protocol::Udp, ServiceType::LoadBalancer),
            (30053, 53, Protocol::Udp, ServiceType::LoadBalancer),
        ]
    );
    assert_eq!(p.service_ports[0].service, "web");
}

#[test]
fn a_node_port_service_publishes_its_node_port() {
    let p = pod(&with_service(
        "  type: NodePort\n  selector: {app: web, tier: front}\n  ports:\n  - {port: 80, targetPort: 8080, nodePort: 30080}\n",
    ));
    assert_eq!(p.service_ports.len(), 1);
    let s = &p.service_ports[0];
    assert_eq!((s.host_port, s.container_port), (30080, 8080));
    // targetPort defaults to port.
    let p = pod(&with_service(
        "  type: NodePort\n  selector: {app: web}\n  ports:\n  - {port: 8080, nodePort: 30081}\n",
    ));
    assert_eq!(p.service_ports[0].container_port, 8080);
}

#[test]
fn a_service_that_selects_nothing_is_a_warning_naming_it() {
    for selector in ["  selector: {app: db}\n", ""] {
        let l = load_str(
            "t.yaml",
            &with_service(&format!(
                "  type: LoadBalancer\n{selector}  ports:\n  - {{port: 80}}\n"
            )),
        )
        .unwrap();
        assert!(l.pod.service_ports.is_empty());
        assert!(
            l.warnings
                .iter()
                .any(|w| w.contains("document 1 (Service web): selects no pod")),
            "{:?}",
            l.warnings
        );
    }
}

#[test]
fn bad_service_ports_are_refused_with_the_field_named() {
    for (spec, expected) in [
        (
            "  type: NodePort\n  selector: {app: web}\n  ports:\n  - {port: 80}\n",
            "spec.ports[0].nodePort: missing",
        ),
        (
            "  type: NodePort\n  selector: {app: web}\n  ports:\n  - {port: 80, nodePort: 8080}\n",
            "spec.ports[0].nodePort = \"8080\": must be in the node port range 30000-32767",
        ),
        (
            "  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - {port: 80, targetPort: nope}\n",
            "spec.ports[0].targetPort = \"nope\": no containerPort of this name and protocol",
        ),
        (
            "  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - {port: 53, targetPort: http, protocol: UDP}\n",
            "spec.ports[0].targetPort = \"http\": no containerPort of this name and protocol",
        ),
        (
            "  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - {port: 80}\n  - {port: 81}\n",
            "spec.ports[0].name: missing",
        ),
        (
            "  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - {port: 0}\n",
            "spec.ports[0].port = \"0\": must be between 1 and 65535",
        ),
        (
            "  type: Bogus\n  selector: {app: web}\n  ports:\n  - {port: 80}\n",
            "spec.type = \"Bogus\"",
        ),
        (
            "  type: LoadBalancer\n  selector: {app: web}\n  bogusField: 1\n  ports:\n  - {port: 80}\n",
            "bogusField",
        ),
    ] {
        let e = err(&with_service(spec));
        assert!(e.contains(expected), "{spec}: {e}");
    }
}

#[test]
fn two_publishers_of_one_host_port_are_refused() {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - {port: 8080}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: web}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    ports:\n    - {containerPort: 80, hostPort: 8080}\n";
    let e = err(yaml);
    assert!(
        e.contains("document 1 (Service a): spec.ports[0].port = \"8080\": host port 8080/tcp is already published by a container's hostPort"),
        "{e}"
    );
}
