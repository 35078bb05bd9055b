//! Container environment as Kubernetes builds it: `envFrom` first, then
//! `env` in order, each literal `value` expanded with `$(VAR)` against the
//! variables defined before it (`$$` escapes, unresolved references stay
//! verbatim), values from ConfigMaps/Secrets/fields taken as they are.
//! The pod IP is only known once the sandbox exists, so field references
//! to run-time values stay typed until [`resolve`] is given them. The
//! validator of `env` and `envFrom` is here too; ConfigMaps and Secrets
//! come decoded from [`super::documents`].

use std::collections::HashMap;

use super::downward::{self, NodeAllocatable, ResourceRef};
use super::{Ctx, DataKind, Result};
use crate::manifest;

/// A pod field known only at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeField {
    /// `status.podIP`.
    PodIp,
    /// `status.podIPs` (comma-separated, as the kubelet writes it).
    PodIps,
    /// `status.hostIP`.
    HostIp,
    /// `status.hostIPs`.
    HostIps,
    /// `spec.nodeName`.
    NodeName,
}

/// Values of [`RuntimeField`]s, given by the runtime once the sandbox is up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeValues {
    /// Pod IPs, primary first (empty for a loopback-only sandbox).
    pub pod_ips: Vec<String>,
    /// Host IPs, primary first.
    pub host_ips: Vec<String>,
    /// The host's name.
    pub node_name: String,
    /// What an unset limit of a `resourceFieldRef` reads as.
    pub node: NodeAllocatable,
}

impl RuntimeValues {
    fn get(&self, field: RuntimeField) -> String {
        match field {
            RuntimeField::PodIp => self.pod_ips.first().cloned().unwrap_or_default(),
            RuntimeField::PodIps => self.pod_ips.join(","),
            RuntimeField::HostIp => self.host_ips.first().cloned().unwrap_or_default(),
            RuntimeField::HostIps => self.host_ips.join(","),
            RuntimeField::NodeName => self.node_name.clone(),
        }
    }
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `value:` as written; `$(VAR)` is expanded at [`resolve`].
    Expand(String),
    /// A value taken verbatim (ConfigMap, Secret, static pod field).
    Fixed(String),
    /// A pod field known at run time.
    Runtime(RuntimeField),
    /// A container's limit or request (`resourceFieldRef`).
    Resource(ResourceRef),
}

/// One variable, in definition order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Value source.
    pub value: EnvValue,
}

/// Builds the final environment: later definitions replace earlier ones
/// (keeping the first position); `$(VAR)` sees every variable defined
/// before it.
pub fn resolve(vars: &[EnvVar], runtime: &RuntimeValues) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(vars.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for var in vars {
        let value = match &var.value {
            EnvValue::Expand(raw) => {
                expand(raw, |name| index.get(name).map(|&i| out[i].1.as_str()))
            }
            EnvValue::Fixed(v) => v.clone(),
            EnvValue::Runtime(f) => runtime.get(*f),
            EnvValue::Resource(r) => r.value(&runtime.node),
        };
        match index.get(&var.name) {
            Some(&i) => out[i].1 = value,
            None => {
                index.insert(var.name.clone(), out.len());
                out.push((var.name.clone(), value));
            }
        }
    }
    out
}

/// Expands `$(VAR)` references in `input` exactly as Kubernetes'
/// `third_party/forked/golang/expansion` does: `$$` is a literal `$`, a
/// reference that `lookup` does not know stays as written, and an
/// unterminated `$(` or a `$` before any other character is kept.
pub fn expand<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest[1..].find(')') {
                    Some(close) => {
                        let name = &rest[1..1 + close];
                        match lookup(name) {
                            Some(v) => out.push_str(v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 2
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` and the next character are copied; the Go code
                    // copies one byte, so a multi-byte character is
                    // copied whole here and skipped below.
                    let ch = rest.chars().next().unwrap_or_default();
                    out.push('$');
                    out.push(ch);
                    ch.len_utf8()
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

/// A container's `envFrom` then `env`, in that order, at `cp`.
pub(super) fn env_list(
    ctx: &mut Ctx<'_>,
    c: &manifest::Container,
    cp: &str,
) -> Result<Vec<EnvVar>> {
    let mut env = Vec::new();
    for (i, ef) in c.env_from.iter().enumerate() {
        env_from(ctx, ef, &format!("{cp}.envFrom[{i}]"), &mut env)?;
    }
    for (i, e) in c.env.iter().enumerate() {
        let ep = format!("{cp}.env[{i}]");
        let name = e
            .name
            .as_deref()
            .ok_or_else(|| ctx.err(format!("{ep}.name"), None, "missing"))?;
        if !is_env_name(name) {
            return Err(ctx.err(
                format!("{ep}.name"),
                Some(name),
                "must be printable ASCII without '='",
            ));
        }
        let value = match (&e.value, &e.value_from) {
            (Some(v), Some(_)) if !v.is_empty() => {
                return Err(ctx.err(
                    format!("{ep}.valueFrom"),
                    None,
                    "may not be given together with a non-empty value",
                ));
            }
            (_, Some(from)) => match value_from(ctx, from, &format!("{ep}.valueFrom"), c)? {
                Some(v) => v,
                None => continue, // optional and missing: not set
            },
            (v, None) => EnvValue::Expand(v.clone().unwrap_or_default()),
        };
        env.push(EnvVar {
            name: name.to_owned(),
            value,
        });
    }
    Ok(env)
}

/// One `envFrom` entry at `ep`: every key of a ConfigMap or Secret that
/// makes a valid name (with the prefix); the others are reported.
fn env_from(
    ctx: &mut Ctx<'_>,
    ef: &manifest::EnvFromSource,
    ep: &str,
    env: &mut Vec<EnvVar>,
) -> Result<()> {
    let prefix = ef.prefix.as_deref().unwrap_or("");
    let (kind, r, field) = ctx.exactly_one(
        ep,
        [
            (
                "configMapRef",
                ef.config_map_ref
                    .as_ref()
                    .map(|r| (DataKind::ConfigMap, r, "configMapRef")),
            ),
            (
                "secretRef",
                ef.secret_ref
                    .as_ref()
                    .map(|r| (DataKind::Secret, r, "secretRef")),
            ),
        ],
    )?;
    let name_path = format!("{ep}.{field}.name");
    let name = r
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(&name_path, None, "missing"))?;
    let Some(obj) = ctx.data_object(kind, name, &name_path, r.optional == Some(true))? else {
        return Ok(());
    };
    let mut skipped = Vec::new();
    for (k, v) in &obj.data {
        let var = format!("{prefix}{k}");
        if !is_env_name(&var) {
            skipped.push(var);
            continue;
        }
        let value = String::from_utf8(v.clone()).map_err(|_| {
            ctx.err(
                format!("{ep}.{field}"),
                Some(name),
                format!("key {k} is not UTF-8 text"),
            )
        })?;
        env.push(EnvVar {
            name: var,
            value: EnvValue::Fixed(value),
        });
    }
    if !skipped.is_empty() {
        // The kubelet skips such keys with an event; so do we, loudly.
        ctx.ignored.push(format!(
            "{ep} keys {} (invalid variable names)",
            skipped.join(" ")
        ));
    }
    Ok(())
}

/// The source an `env[].valueFrom` names (exactly one).
enum RawSource<'a> {
    Key(DataKind, &'a manifest::KeyRef, &'static str),
    Field(&'a manifest::FieldRef),
    Resource(&'a manifest::ResourceFieldRef),
}

/// `env[].valueFrom` of container `c` at `vp`; `None` for an optional key
/// that is missing.
fn value_from(
    ctx: &Ctx<'_>,
    s: &manifest::EnvVarSource,
    vp: &str,
    c: &manifest::Container,
) -> Result<Option<EnvValue>> {
    if s.file_key_ref.is_some() {
        return Err(ctx.err(format!("{vp}.fileKeyRef"), None, "not supported"));
    }
    let source = ctx.exactly_one(
        vp,
        [
            (
                "configMapKeyRef",
                s.config_map_key_ref
                    .as_ref()
                    .map(|r| RawSource::Key(DataKind::ConfigMap, r, "configMapKeyRef")),
            ),
            (
                "secretKeyRef",
                s.secret_key_ref
                    .as_ref()
                    .map(|r| RawSource::Key(DataKind::Secret, r, "secretKeyRef")),
            ),
            ("fieldRef", s.field_ref.as_ref().map(RawSource::Field)),
            (
                "resourceFieldRef",
                s.resource_field_ref.as_ref().map(RawSource::Resource),
            ),
        ],
    )?;
    match source {
        RawSource::Field(f) => field_ref(ctx, f, &format!("{vp}.fieldRef")).map(Some),
        // An env's resourceFieldRef reads its own container by default.
        RawSource::Resource(r) => {
            downward::resource_ref(ctx, r, &format!("{vp}.resourceFieldRef"), c.name.as_deref())
                .map(|r| Some(EnvValue::Resource(r)))
        }
        RawSource::Key(kind, r, field) => key_ref(ctx, kind, r, &format!("{vp}.{field}")),
    }
}

/// A `fieldRef` at `fp`: static pod fields now, run-time ones typed
/// (Kubernetes' `validEnvDownwardAPIFieldPathExpressions`, less
/// `spec.serviceAccountName`: no service accounts here).
fn field_ref(ctx: &Ctx<'_>, f: &manifest::FieldRef, fp: &str) -> Result<EnvValue> {
    let path = downward::field_path(ctx, f, fp)?;
    if let Some(value) = downward::static_field(ctx, path) {
        return Ok(EnvValue::Fixed(value));
    }
    Ok(match path {
        "status.podIP" => EnvValue::Runtime(RuntimeField::PodIp),
        "status.podIPs" => EnvValue::Runtime(RuntimeField::PodIps),
        "status.hostIP" => EnvValue::Runtime(RuntimeField::HostIp),
        "status.hostIPs" => EnvValue::Runtime(RuntimeField::HostIps),
        "spec.nodeName" => EnvValue::Runtime(RuntimeField::NodeName),
        _ => {
            return Err(ctx.err(
                format!("{fp}.fieldPath"),
                Some(path),
                "supported: metadata.name, metadata.namespace, metadata.uid, metadata.labels['K'], metadata.annotations['K'], spec.nodeName, status.podIP, status.podIPs, status.hostIP, status.hostIPs",
            ));
        }
    })
}

/// A `configMapKeyRef` / `secretKeyRef` at `rp`: the key's text, `None`
/// when optional and missing.
fn key_ref(
    ctx: &Ctx<'_>,
    kind: DataKind,
    r: &manifest::KeyRef,
    rp: &str,
) -> Result<Option<EnvValue>> {
    let name_path = format!("{rp}.name");
    let key_path = format!("{rp}.key");
    let name = r
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(&name_path, None, "missing"))?;
    let key = r
        .key
        .as_deref()
        .ok_or_else(|| ctx.err(&key_path, None, "missing"))?;
    let optional = r.optional == Some(true);
    let Some(obj) = ctx.data_object(kind, name, &name_path, optional)? else {
        return Ok(None);
    };
    let Some(bytes) = obj.data.get(key) else {
        if optional {
            return Ok(None);
        }
        return Err(ctx.err(
            key_path,
            Some(key),
            format!("{kind} {name} has no such key (and not optional)"),
        ));
    };
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| ctx.err(key_path, Some(key), "the value is not UTF-8 text"))?;
    Ok(Some(EnvValue::Fixed(text)))
}

/// Environment variable names: printable ASCII without `=` (Kubernetes'
/// relaxed validation, GA in 1.34).
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// Cases from Kubernetes' expand_test.go.
    #[test]
    fn expansion_matches_kubernetes() {
        let vars = [
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
        ];
        let m = map(&vars);
        let cases = [
            ("whole string", "$(VAR_A)", "A"),
            ("repeat", "$(VAR_A)-$(VAR_A)", "A-A"),
            ("beginning", "$(VAR_A)-1", "A-1"),
            ("middle", "___$(VAR_B)___", "___B___"),
            ("end", "___$(VAR_C)", "___C"),
            ("compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
            ("escape & expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
            (
                "compound escape",
                "$$(VAR_A)_$$(VAR_B)",
                "$(VAR_A)_$(VAR_B)",
            ),
            ("mixed in escapes", "f000-$$VAR_A", "f000-$VAR_A"),
            ("backslash escape ignored", "foo\\$(VAR_C)bar", "foo\\Cbar"),
            (
                "backslash escape ignored 2",
                "foo\\\\$(VAR_C)bar",
                "foo\\\\Cbar",
            ),
            (
                "lots of backslashes",
                "foo\\\\\\\\$(VAR_A)bar",
                "foo\\\\\\\\Abar",
            ),
            (
                "nested var references",
                "$(VAR_A$(VAR_B))",
                "$(VAR_A$(VAR_B))",
            ),
            (
                "nested var references second type",
                "$(VAR_A$(VAR_B)",
                "$(VAR_A$(VAR_B)",
            ),
            ("value is a reference", "$(VAR_REF)", "$(VAR_A)"),
            (
                "value is a reference x 2",
                "%%$(VAR_REF)--$(VAR_REF)%%",
                "%%$(VAR_A)--$(VAR_A)%%",
            ),
            ("empty var", "foo$(VAR_EMPTY)bar", "foobar"),
            (
                "unterminated expression",
                "foo$(VAR_Awhoops!",
                "foo$(VAR_Awhoops!",
            ),
            (
                "expression without operator",
                "f00__(VAR_A)__",
                "f00__(VAR_A)__",
            ),
            ("shell special vars pass through", "$?_boo_$!", "$?_boo_$!"),
            ("bare operators are ignored", "$VAR_A", "$VAR_A"),
            (
                "undefined vars are passed through",
                "$(VAR_DNE)",
                "$(VAR_DNE)",
            ),
            (
                "multiple (even) operators, var undefined",
                "$$$$$$(BIG_MONEY)",
                "$$$(BIG_MONEY)",
            ),
            (
                "multiple (even) operators, var defined",
                "$$$$$$(VAR_A)",
                "$$$(VAR_A)",
            ),
            (
                "multiple (odd) operators, var undefined",
                "$$$$$$$(GOOD_ODDS)",
                "$$$$(GOOD_ODDS)",
            ),
            (
                "multiple (odd) operators, var defined",
                "$$$$$$$(VAR_A)",
                "$$$A",
            ),
            ("missing open expression", "$VAR_A)", "$VAR_A)"),
            ("shell syntax ignored", "${VAR_A}", "${VAR_A}"),
            (
                "trailing incomplete expression not consumed",
                "$(VAR_B)_______$(A",
                "B_______$(A",
            ),
            (
                "trailing incomplete expression, no content, is not consumed",
                "$(VAR_C)_______$(",
                "C_______$(",
            ),
            (
                "operator at end of input string is preserved",
                "$(VAR_A)foobarzab$",
                "Afoobarzab$",
            ),
            (
                "shell escaped incomplete expr",
                "foo-\\$(VAR_A",
                "foo-\\$(VAR_A",
            ),
            ("lots of $( in middle", "--$($($($($--", "--$($($($($--"),
            (
                "lots of $( in beginning",
                "$($($($($--foo$(",
                "$($($($($--foo$(",
            ),
            ("lots of $( at end", "foo0--$($($($(", "foo0--$($($($("),
            (
                "escaped operators in variable names are not escaped",
                "$(foo$$var)",
                "$(foo$$var)",
            ),
            ("newline not expanded", "\n", "\n"),
            ("empty", "", ""),
            ("utf-8 after operator", "$é$(VAR_A)", "$éA"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(expand(input, &m), expected, "{name}");
        }
    }

    #[test]
    fn resolve_sees_only_earlier_variables_and_runtime_fields() {
        let vars = vec![
            EnvVar {
                name: "A".into(),
                value: EnvValue::Expand("x$(B)".into()),
            },
            EnvVar {
                name: "B".into(),
                value: EnvValue::Fixed("b".into()),
            },
            EnvVar {
                name: "C".into(),
                value: EnvValue::Expand("$(A)-$(B)-$(IP)".into()),
            },
            EnvVar {
                name: "IP".into(),
                value: EnvValue::Runtime(RuntimeField::PodIp),
            },
            EnvVar {
                name: "D".into(),
                value: EnvValue::Expand("$(IP)".into()),
            },
            EnvVar {
                name: "B".into(),
                value: EnvValue::Fixed("b2".into()),
            },
            EnvVar {
                name: "RAW".into(),
                value: EnvValue::Fixed("$(A)".into()),
            },
        ];
        let rt = RuntimeValues {
            pod_ips: vec!["10.1.0.5".into(), "fd00::5".into()],
            ..Default::default()
        };
        let env = resolve(&vars, &rt);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("x$(B)"));
        assert_eq!(get("C"), Some("x$(B)-b-$(IP)"));
        assert_eq!(get("D"), Some("10.1.0.5"));
        assert_eq!(get("B"), Some("b2"));
        assert_eq!(get("RAW"), Some("$(A)"));
        assert_eq!(env.iter().filter(|(n, _)| n == "B").count(), 1);
        assert_eq!(env[1].0, "B");
    }
}
