//! What the report says about the idmap rows that cannot come up where the harness runs.

use crate::model::idmap_witness::{MAP_NEEDS_CAP_SYS_ADMIN, NEEDS_SETID};

/// Why the row of `rule` cannot be provoked in `env`, if it cannot: a gid_map write needs
/// setgroups "allow" to fail, and below a sandbox user namespace (which the sandbox made with
/// "deny" written) every user namespace inherits "deny". The witness's refusals for want of
/// CAP_SETUID/CAP_SETGID come from the `nobody` setup, and for want of CAP_SYS_ADMIN over the
/// caller's namespace from a caller that became uid 65534 (`keepcaps-nobody`): both need uid
/// 65534 mapped where the executor runs.
pub fn idmap_row_not_here(rule: &str, env: &crate::env::Environment) -> Option<&'static str> {
    if rule == crate::model::idmap::GID_NEEDS_SETGROUPS_DENY && env.sandbox_user_ns {
        return Some(
            "the sandbox's user namespace has setgroups \"deny\", and every user namespace below it inherits it",
        );
    }
    ((rule == MAP_NEEDS_CAP_SYS_ADMIN || rule == NEEDS_SETID) && !env.nobody_mapped).then_some(
        "uid 65534 has no mapping in the executor's user namespace: no setup or step gives the witness \
         or the caller another uid than its own",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setgroups_row_is_not_here_below_a_sandbox_user_namespace() {
        let mut env = crate::env::Environment::reference();
        let rule = crate::model::idmap::GID_NEEDS_SETGROUPS_DENY;
        env.sandbox_user_ns = false;
        assert_eq!(idmap_row_not_here(rule, &env), None);
        env.sandbox_user_ns = true;
        assert!(idmap_row_not_here(rule, &env).is_some_and(|why| why.contains("deny")));
        assert_eq!(idmap_row_not_here(crate::model::idmap::NEEDS_OWN_ID, &env), None);
    }

    #[test]
    fn the_witness_rows_of_another_uid_need_65534_mapped() {
        let mut env = crate::env::Environment::reference();
        assert_eq!(idmap_row_not_here(NEEDS_SETID, &env), None);
        env.nobody_mapped = false;
        assert!(idmap_row_not_here(NEEDS_SETID, &env).is_some_and(|why| why.contains("65534")));
        assert!(idmap_row_not_here(MAP_NEEDS_CAP_SYS_ADMIN, &env).is_some());
        assert_eq!(idmap_row_not_here(crate::model::idmap_witness::NOT_PARENT, &env), None);
    }
}
