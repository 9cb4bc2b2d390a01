//! `unshare-fuzz bench` end to end, with few cases per mix: the table has every mix, each row
//! was measured (both loops ran, the ratio is their quotient, no invariant was violated),
//! and the JSON says where the executors ran. It checks the table's shape and consistency,
//! never a speed.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use serde_json::Value;

#[test]
fn bench_measures_every_mix_and_reports_consistent_rows() {
    let dir = common::temp_dir("bench");
    let json = dir.join("bench.json");
    let out = common::run(&["bench", "--cases", "20", "--jobs", "2", "--json", json.to_str().unwrap()]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    // Every fixed mix (single flags, all namespaces, the random mix), then the random mix
    // again with --jobs 2.
    let mixes = unshare_fuzz::command::bench::mixes(20, 1);
    assert_eq!(rows.len(), mixes.len() + 1, "{text}");
    for ((name, _), row) in mixes.iter().zip(rows) {
        assert_eq!(row["mix"].as_str(), Some(name.as_str()), "{row}");
    }
    for row in rows {
        let (h, b, r) = (
            row["harness_per_s"].as_f64().unwrap(),
            row["bare_per_s"].as_f64().unwrap(),
            row["ratio"].as_f64().unwrap(),
        );
        assert!(h > 0.0 && b > 0.0, "{row}");
        assert!((r - h / b).abs() < 1e-9, "ratio is not harness/bare: {row}");
        // The C checker floor runs beside the one-job rows (a C compiler is on every machine
        // that runs these tests: tests/repro_c.rs needs gcc too); not for the --jobs row.
        if row["jobs"] == 1 {
            let f = row["floor_per_s"].as_f64().unwrap_or_else(|| panic!("no floor: {row}\n{text}"));
            assert!(f > 0.0, "{row}");
            assert!((row["floor_ratio"].as_f64().unwrap() - h / f).abs() < 1e-9, "h/floor is not harness/floor: {row}");
        } else {
            assert!(row["floor_per_s"].is_null(), "{row}");
        }
        assert_eq!(row["violations"], 0, "{row}");
        let mix = row["mix"].as_str().unwrap();
        assert!(text.contains(mix), "the table misses {mix}:\n{text}");
    }
    let last = rows.last().unwrap();
    assert_eq!(last["jobs"], 2, "{last}");
    assert!(report["jobs2_speedup"].as_f64().unwrap() > 0.0);
    assert!(report["bare_jobs_speedup"].as_f64().unwrap() > 0.0);
    assert_eq!(report["placement"]["jobs"].as_array().unwrap().len(), 2, "{}", report["placement"]);
    assert!(text.contains("placement: bare loop"), "{text}");
    assert!(text.contains("checker floor: CPU") || text.contains("checker floor: unpinned"), "{text}");
    assert!(text.contains("h/floor"), "{text}");
    assert!(text.contains("speed-up on the random mix: harness"), "{text}");
    assert!(text.contains("executor 0 after the last mix: RSS"), "{text}");
}
