//! Replays CPython's recorded answers (`tests/data/inet_cases.json`, written by
//! `tools/gen_inet_cases.py`; the format is documented there) against `sockrelay_inet`.
//! Every mismatch is listed, not just the first, so one run shows the whole picture.
#![allow(clippy::unwrap_used)]
// Native only: these use proptest / the file system, which the wasm32 test runner lacks.
#![cfg(not(target_arch = "wasm32"))]

use serde_json::{json, Value};
use sockrelay_inet::{self as inet, AddressFacts, PyError, Subnet};

fn err_json(e: &PyError) -> Value {
    json!({"error": {"type": e.kind.name(), "message": e.message}})
}

fn result<T>(r: Result<T, PyError>, ok: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => json!({ "ok": ok(v) }),
        Err(e) => err_json(&e),
    }
}

fn facts_json(f: AddressFacts) -> Value {
    json!({
        "family": f.family, "bytes": f.bytes, "canonical": f.canonical, "integer": f.integer,
        "hex": f.hex, "binary": f.binary, "python_bytes": f.python_bytes, "kind": f.kind.as_str(),
    })
}

fn subnet_json(s: Subnet) -> Value {
    json!({
        "family": s.family, "prefix": s.prefix, "network": s.network, "netmask": s.netmask,
        "first_host": s.first_host, "last_host": s.last_host, "broadcast": s.broadcast,
        "size": s.size, "hosts": s.hosts,
    })
}

fn bytes_arg(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
        .collect()
}

fn str_arg(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn family_arg(v: &Value) -> i32 {
    i32::try_from(v.as_i64().unwrap()).unwrap()
}

/// What our implementation answers, in the JSON shape of a case's "ok"/"error" part.
fn answer(fun: &str, args: &[Value]) -> Value {
    let proto = || args.get(1).map(str_arg);
    match fun {
        "inet_aton" => result(inet::inet_aton(str_arg(&args[0])), |b| json!(b)),
        "inet_ntoa" => result(inet::inet_ntoa(&bytes_arg(&args[0])), |s| json!(s)),
        "inet_pton" => result(
            inet::inet_pton(family_arg(&args[0]), str_arg(&args[1])),
            |b| json!(b),
        ),
        "inet_ntop" => result(
            inet::inet_ntop(family_arg(&args[0]), &bytes_arg(&args[1])),
            |s| json!(s),
        ),
        "getservbyname" => result(inet::getservbyname(str_arg(&args[0]), proto()), |p| {
            json!(p)
        }),
        "getservbyport" => result(
            inet::getservbyport(args[0].as_i64().unwrap(), proto()),
            |s| json!(s),
        ),
        "address_facts" => result(inet::address_facts(str_arg(&args[0])), facts_json),
        "subnet" => result(inet::subnet(str_arg(&args[0])), subnet_json),
        other => panic!("unknown function {other:?} in the oracle file"),
    }
}

#[test]
fn matches_cpython_on_every_recorded_case() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/inet_cases.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(data["format"], 1, "unknown oracle file format");
    let cases = data["cases"].as_array().unwrap();
    assert!(
        cases.len() > 10_000,
        "suspiciously few cases: {}",
        cases.len()
    );

    let mut mismatches = Vec::new();
    let mut per_fn = std::collections::BTreeMap::<&str, usize>::new();
    for case in cases {
        let fun = case["fn"].as_str().unwrap();
        let args = case["args"].as_array().unwrap();
        *per_fn.entry(fun).or_default() += 1;
        let mut expected = case.clone();
        let expected = expected.as_object_mut().unwrap();
        expected.remove("fn");
        expected.remove("args");
        let expected = Value::Object(expected.clone());
        let got = answer(fun, args);
        if got != expected {
            mismatches.push(format!(
                "{fun}({})\n    python: {expected}\n    rust:   {got}",
                serde_json::to_string(args).unwrap()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from CPython:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    eprintln!("{} oracle cases match: {per_fn:?}", cases.len());
}
