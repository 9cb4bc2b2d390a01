//! What the report says about the idmap rows that cannot come up where the harness runs.

/// Why the row of `rule` cannot be provoked in `env`, if it cannot: a gid_map write needs
/// setgroups "allow" to fail, and below a sandbox user namespace (which the sandbox made with
/// "deny" written) every user namespace inherits "deny".
pub fn idmap_row_not_here(rule: &str, env: &crate::env::Environment) -> Option<&'static str> {
    (rule == crate::model::idmap::GID_NEEDS_SETGROUPS_DENY && env.sandbox_user_ns)
        .then_some("the sandbox's user namespace has setgroups \"deny\", and every user namespace below it inherits it")
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
}
