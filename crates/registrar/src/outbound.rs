//! Reaching an instance that registered several flows (RFC 5626 §5.3): one at a time.

use crate::binding::Binding;

/// True when `a` and `b` are flows of one instance.
fn siblings(a: &Binding, b: &Binding) -> bool {
    a.reg_id.is_some() && b.reg_id.is_some() && a.instance == b.instance
}

/// Keeps, of each instance's flows that the same request reaches (one Contact and Path),
/// the one registered last (the furthest expiry): the target set holds one of them, and
/// the others are its fallbacks ([`other_flows`]). Flows through different edge proxies
/// (another Path) stay in the set, which has no other way to reach them.
pub fn one_flow_per_instance(bindings: &mut Vec<Binding>) {
    if bindings
        .iter()
        .filter(|b| b.reg_id.is_some())
        .nth(1)
        .is_none()
    {
        return; // the common case: no instance with two flows
    }
    let mut i = 0;
    while i < bindings.len() {
        let b = &bindings[i];
        let better = bindings
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && same_request(b, o) && (o.expires_at, j) > (b.expires_at, i));
        if better {
            bindings.remove(i);
        } else {
            i += 1;
        }
    }
}

/// True when `a` and `b` are flows of one instance that the same request reaches (the
/// same Contact and Path: only where it goes differs).
fn same_request(a: &Binding, b: &Binding) -> bool {
    siblings(a, b) && a.contact == b.contact && a.path == b.path
}

/// The other flows of `b`'s instance that the same request reaches, registered last
/// first: where a request goes when `b`'s flow failed (430 Flow Failed).
pub fn other_flows<'a>(all: &'a [Binding], b: &Binding) -> Vec<&'a Binding> {
    let mut others: Vec<&Binding> = all
        .iter()
        .filter(|o| o.reg_id != b.reg_id && same_request(o, b))
        .collect();
    others.sort_by_key(|o| std::cmp::Reverse(o.expires_at));
    others
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(instance: &str, reg_id: Option<u32>, expires_at: u64) -> Binding {
        Binding {
            aor: "sip:a@h".into(),
            contact: "sip:a@192.0.2.1;ob".into(),
            q: 1000,
            expires_at,
            call_id: "c".into(),
            cseq: 1,
            path: Vec::new(),
            source: format!("tcp:192.0.2.1:{expires_at}"),
            via_at_source: false,
            user_agent: None,
            instance: Some(instance.into()),
            reg_id,
        }
    }

    #[test]
    fn one_flow_of_each_instance_is_tried_the_others_after() {
        let (a1, a2, a3) = (
            flow("a", Some(1), 10),
            flow("a", Some(2), 30),
            flow("a", Some(3), 20),
        );
        let (b1, plain) = (flow("b", Some(1), 5), flow("a", None, 1));
        let all = vec![
            a1.clone(),
            a2.clone(),
            b1.clone(),
            a3.clone(),
            plain.clone(),
        ];
        let mut set = all.clone();
        one_flow_per_instance(&mut set);
        assert_eq!(set, [a2.clone(), b1.clone(), plain]);
        assert_eq!(other_flows(&all, &a2), [&a3, &a1]);
        assert!(other_flows(&all, &b1).is_empty());
        // Another Path: the same request would not reach it, so it is no fallback, and
        // stays in the set.
        let mut via_edge = a1.clone();
        via_edge.path = vec!["<sip:edge;lr>".into()];
        assert_eq!(other_flows(&[via_edge.clone(), a3.clone()], &a2), [&a3]);
        let mut set = vec![via_edge.clone(), a2.clone(), a3.clone()];
        one_flow_per_instance(&mut set);
        assert_eq!(set, [via_edge, a2.clone()]);
    }
}
