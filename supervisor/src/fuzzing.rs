//! Entry points shared by the fuzz targets (`fuzz/`, cargo fuzz) and by
//! the corpus regression tests (`tests/fuzz_corpus.rs`), so the two cannot
//! drift: each takes arbitrary bytes, runs one parser the way the
//! supervisor runs it, and panics only when an invariant is broken (an
//! error that does not name its file, a multi-line message, a parsed value
//! that contradicts itself). Errors of the parsers themselves are normal
//! outcomes and returned as `Err` with their message.

use crate::cni::result::CniResult;
use crate::quantity::{self, Quantity};
use crate::spec;

/// The file name the manifest target gives its input.
pub const MANIFEST_FILE: &str = "fuzz.yaml";

/// Loads `data` as a manifest, as `supervisor run` does after reading its
/// file: parse every document, pick the pod, validate it.
///
/// Invariants: no panic; an error is one line that starts with
/// [`MANIFEST_FILE`]; a loaded pod has a name, a namespace and at least
/// one container.
pub fn manifest(data: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(data) else {
        // `spec::load` refuses non-UTF-8 files before parsing.
        return Err("not UTF-8".into());
    };
    match spec::load_str(MANIFEST_FILE, text) {
        Ok(loaded) => {
            let pod = &loaded.pod;
            assert!(!pod.name.is_empty(), "a loaded pod without a name");
            assert!(
                !pod.namespace.is_empty(),
                "a loaded pod without a namespace"
            );
            assert!(
                !pod.containers.is_empty(),
                "a loaded pod without containers"
            );
            for warning in &loaded.warnings {
                assert!(
                    warning.starts_with(MANIFEST_FILE),
                    "a warning that does not name the file: {warning}"
                );
            }
            Ok(())
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.starts_with(MANIFEST_FILE),
                "an error that does not name the file: {message}"
            );
            assert!(!message.contains('\n'), "a multi-line error: {message}");
            Err(message)
        }
    }
}

/// Parses `data` as a resource quantity and converts it both ways, as
/// resources and the log-size flag do.
///
/// Invariants: no panic; `parse_bytes` and `parse_millicores` agree with
/// `Quantity::parse` followed by the conversion; a quantity keeps its text;
/// a negative one converts to an error, zero to 0; units and millis agree
/// (millis is at least 1000 times units minus rounding, and within 1000 of
/// it after rounding up).
pub fn quantity(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let parsed = Quantity::parse(text);
    let bytes = quantity::parse_bytes(text);
    let millis = quantity::parse_millicores(text);
    let q = match parsed {
        Ok(q) => q,
        Err(e) => {
            assert!(
                bytes.is_err(),
                "{text:?}: parse failed but parse_bytes did not"
            );
            assert!(
                millis.is_err(),
                "{text:?}: parse failed but parse_millicores did not"
            );
            return Err(e.to_string());
        }
    };
    assert_eq!(q.as_str(), text);
    let units = q.to_units();
    let thousandths = q.to_millis();
    assert_eq!(units.as_ref().ok(), bytes.as_ref().ok(), "{text:?}: bytes");
    assert_eq!(
        thousandths.as_ref().ok(),
        millis.as_ref().ok(),
        "{text:?}: millis"
    );
    if q.is_negative() {
        assert!(
            units.is_err() && thousandths.is_err(),
            "{text:?}: negative converted"
        );
    }
    if q.is_zero() {
        assert_eq!(units.as_ref().ok(), Some(&0), "{text:?}: zero");
        assert_eq!(thousandths.as_ref().ok(), Some(&0), "{text:?}: zero");
    }
    if let (Ok(u), Ok(m)) = (&units, &thousandths) {
        // ceil(v) and ceil(1000 v): 1000 (ceil(v) - 1) < ceil(1000 v) <= 1000 ceil(v).
        let (u, m) = (u128::from(*u), u128::from(*m));
        assert!(m <= 1000 * u, "{text:?}: {m} millis > 1000 * {u} units");
        assert!(
            u == 0 || m > 1000 * (u - 1),
            "{text:?}: {m} millis <= 1000 * ({u} - 1)"
        );
    }
    units.map(drop).map_err(|e| e.to_string())
}

/// Parses `data` as a CNI plugin's stdout and reads the pod's addresses
/// from it, as the network setup does.
///
/// Invariants: no panic (interface indexes are checked before they are
/// used); every pod IP is one of the result's addresses; the addresses of
/// an interface are among the result's too.
pub fn cni_result(data: &[u8]) -> Result<(), String> {
    let result = CniResult::parse(data).map_err(|e| e.to_string())?;
    let all: Vec<_> = result.ips.iter().map(|ip| ip.address).collect();
    for ip in result.pod_ips() {
        assert!(
            all.iter().any(|a| a.addr == ip),
            "pod IP {ip} not in the result"
        );
    }
    for interface in &result.interfaces {
        for net in result.addresses_of(&interface.name) {
            assert!(all.contains(&net), "{net:?} not in the result");
        }
    }
    // What the cache keeps and reads back types the same.
    let again = CniResult::from_value(result.raw.clone()).expect("a parsed result re-types");
    assert_eq!(again, result);
    Ok(())
}
