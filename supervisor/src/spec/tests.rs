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
    }) = &web.readiness_probe
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
    assert!(String::from_utf8_lossy(&files[0].data).contains("Hello from a ConfigMap"));
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
        c.post_start,
        Some(Handler::Exec {
            command: vec!["/bin/sh".into(), "-c".into(), "echo up".into()]
        })
    );
    assert!(
        matches!(&c.pre_stop, Some(Handler::HttpGet { port: 8080, path, host: None, .. }) if path == "/down")
    );
    let sleep = pod(&with_container(
        "    lifecycle: {preStop: {sleep: {seconds: 0}}}\n",
    ));
    assert_eq!(
        sleep.containers[0].pre_stop,
        Some(Handler::Sleep {
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
        (files[0].data.as_slice(), files[0].mode),
        (b"key".as_slice(), 0o400)
    );
    assert_eq!(
        (files[1].data.as_slice(), files[1].mode),
        (b"crt".as_slice(), 0o444)
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
        ["t.yaml: ignored (not run by a single-host supervisor): Service svc, Ingress ing"]
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
