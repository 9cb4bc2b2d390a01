//! The inside witness in a C reproducer (issue 16 class 3): the `WIT_*` constants of
//! `witness.c`, generated from `case::inside`, the calls that start the witness and take its
//! readings, and the `wit_judge()` call that carries the model's predictions
//! (`model::inside_witness`) into C.

use std::fmt::Write;

use super::c_str;
use crate::case::Setup;
use crate::case::inside::{
    INSIDE_BOOTTIME_OFFSET_S, INSIDE_CALLER_HOSTNAME, INSIDE_CLOCK_SLACK_S, INSIDE_MONOTONIC_OFFSET_S,
    INSIDE_MOUNT_DIR, INSIDE_MOUNT_PARENT, INSIDE_TIMENS_OFFSETS, INSIDE_WITNESS_HOSTNAME, SHARED_MOUNT_CALLER,
    SHARED_MOUNT_DIR, SHARED_MOUNT_WITNESS,
};
use crate::model::FinalExpect;
use crate::model::inside_witness::{SetgroupsExpect, SharedRelation, TimeWrite};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `#define`s `witness.c` reads, before the primitives.
pub(super) fn defines(out: &mut String) {
    let _ = writeln!(out, "#define WIT_CALLER_HOST {}", c_str(&text(INSIDE_CALLER_HOSTNAME)));
    let _ = writeln!(out, "#define WIT_WITNESS_HOST {}", c_str(&text(INSIDE_WITNESS_HOSTNAME)));
    let _ = writeln!(out, "#define WIT_MNT_DIR {}", c_str(&INSIDE_MOUNT_DIR.to_string_lossy()));
    let _ = writeln!(out, "#define WIT_MNT_PARENT {}", c_str(&INSIDE_MOUNT_PARENT.to_string_lossy()));
    let _ = writeln!(out, "#define WIT_OFFSETS {}", c_str(&text(INSIDE_TIMENS_OFFSETS)));
    let _ = writeln!(out, "#define WIT_MONO_S {INSIDE_MONOTONIC_OFFSET_S}");
    let _ = writeln!(out, "#define WIT_BOOT_S {INSIDE_BOOTTIME_OFFSET_S}");
    let _ = writeln!(out, "#define WIT_SLACK_S {INSIDE_CLOCK_SLACK_S}");
    let _ = writeln!(out, "#define WIT_SHARED_DIR {}", c_str(&SHARED_MOUNT_DIR.to_string_lossy()));
    let _ = writeln!(out, "#define WIT_SHARED_CALLER {}", c_str(&SHARED_MOUNT_CALLER.to_string_lossy()));
    let _ = writeln!(out, "#define WIT_SHARED_WITNESS {}", c_str(&SHARED_MOUNT_WITNESS.to_string_lossy()));
}

/// Before the first step (after `setns_open_at_start`, as `exec::child::run_steps`).
pub(super) fn start(case: &crate::case::Case) -> &'static str {
    let proc_dir = case.steps.iter().any(|s| matches!(s, crate::case::Step::WitnessIdmap(_)));
    match (case.setup.inside_witness, proc_dir) {
        (true, true) => "\twitness_start(1);\n",
        (true, false) => "\twitness_start(0);\n",
        _ => "",
    }
}

/// After the last step, before the probes (the UTS marker stays the last hostname written).
pub(super) fn readings(s: &Setup) -> &'static str {
    match (s.inside_witness, s.shared_mount) {
        (true, true) => "\twitness_seen();\n\twitness_time();\n\twitness_shared();\n",
        (true, false) => "\twitness_seen();\n\twitness_time();\n",
        _ => "",
    }
}

/// `wit_judge(...)` with the model's predictions, when it predicts the exchange.
pub(super) fn judge(out: &mut String, fin: &FinalExpect) {
    let Some(w) = fin.inside.witness else { return };
    let b = i32::from;
    let (mount, allowed, kept) = w.mount.map_or((-1, 0, 0), |m| (1, b(m.allowed), b(m.kept)));
    let setgroups = match w.setgroups {
        None => -1,
        Some(SetgroupsExpect::AsWitness) => 0,
        Some(SetgroupsExpect::Deny) => 1,
    };
    let (time, forks) = w.time.map_or(("-1", 0), |t| {
        let write = match t.write {
            TimeWrite::Written => "0",
            TimeWrite::Eperm => "EPERM",
            TimeWrite::Eacces => "EACCES",
        };
        (write, b(t.child_forks))
    });
    let _ = writeln!(
        out,
        "\twit_judge({}, {}, {}, {mount}, {allowed}, {kept}, {setgroups}, {time}, {forks}); /* inside-changes-stay-inside */",
        b(w.uts_kept),
        b(w.caller_sets_hostname),
        b(w.witness_sets_hostname),
    );
    if let Some(m) = w.shared {
        let relation = match m.relation {
            SharedRelation::Same => 0,
            SharedRelation::Peer => 1,
            SharedRelation::Slave => 2,
        };
        let _ = writeln!(
            out,
            "\twit_judge_shared({relation}, {}, {}); /* inside-changes-stay-inside: propagation */",
            b(m.caller_allowed),
            b(m.witness_allowed)
        );
    }
}
