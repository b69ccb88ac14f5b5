//! Checks on the route blocks as a whole: duplicates, the required `request_route`, which
//! top-level kinds reach each `route[NAME]`, and recursion between routes.

use std::collections::HashMap;

use crate::ast::{route_calls, Block};
use crate::diag::{Error, Span};
use crate::registry::{RouteKind, RouteMask};
use crate::sources::Sources;

/// A route block as the compiler needs to know it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) kind: RouteKind,
    pub(crate) name: Option<String>,
    /// The top-level kinds it runs in: its own, or for a `route[NAME]` those that reach it.
    pub(crate) mask: RouteMask,
    /// For a `route[NAME]`: some block calls it.
    pub(crate) called: bool,
}

impl Entry {
    /// `request_route`, `failure_route[X]`, `route[X]`…
    pub(crate) fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{}[{n}]", self.kind.keyword()),
            None => self.kind.keyword().to_owned(),
        }
    }
}

/// The route blocks of a script, indexed as in the source.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) entries: Vec<Entry>,
}

impl Table {
    /// Builds the table, reporting the errors of the script's structure.
    pub(crate) fn build(blocks: &[Block], sources: &Sources, errors: &mut Vec<Error>) -> Table {
        let entries: Vec<Entry> = blocks
            .iter()
            .map(|b| Entry {
                kind: b.kind,
                name: b.name.clone(),
                mask: b.kind.mask(),
                called: false,
            })
            .collect();
        let mut seen: HashMap<(RouteKind, Option<&str>), usize> = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            if let Some(&first) = seen.get(&(b.kind, b.name.as_deref())) {
                let (file, line) = sources.line(blocks[first].span.start);
                let place = if file == sources.line(b.span.start).0 {
                    format!("line {line}")
                } else {
                    format!("{file}:{line}")
                };
                let msg = format!(
                    "duplicate {} (first defined at {place})",
                    entries[i].label()
                );
                errors.push(Error::new(b.span, msg));
            } else {
                seen.insert((b.kind, b.name.as_deref()), i);
            }
        }
        if !blocks.iter().any(|b| b.kind == RouteKind::Request) {
            errors.push(Error::new(Span::new(0, 0), "missing request_route"));
        }
        let mut table = Table { entries };
        let edges = table.edges(blocks);
        table.propagate(&edges);
        table.recursion(&edges, errors);
        table
    }

    /// The first block of this kind and name.
    pub(crate) fn find(&self, kind: RouteKind, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.kind == kind && e.name.as_deref() == Some(name))
    }

    /// For each block, the `route(NAME)` calls it makes to existing routes.
    fn edges(&mut self, blocks: &[Block]) -> Vec<Vec<(usize, Span)>> {
        let edges: Vec<Vec<(usize, Span)>> = blocks
            .iter()
            .map(|b| {
                let mut out = Vec::new();
                route_calls(&b.body, &mut |name, span| {
                    if let Some(to) = self.find(RouteKind::Sub, name) {
                        out.push((to, span));
                    }
                });
                out
            })
            .collect();
        for &(to, _) in edges.iter().flatten() {
            self.entries[to].called = true;
        }
        edges
    }

    /// Gives each `route[NAME]` the kinds that reach it; a route nothing reaches is checked
    /// as if `request_route` called it.
    fn propagate(&mut self, edges: &[Vec<(usize, Span)>]) {
        for e in &mut self.entries {
            if e.kind == RouteKind::Sub && !e.called {
                e.mask = RouteMask::REQUEST;
            }
        }
        loop {
            let mut changed = true;
            while changed {
                changed = false;
                for (from, calls) in edges.iter().enumerate() {
                    let mask = self.entries[from].mask;
                    for &(to, _) in calls {
                        let target = &mut self.entries[to].mask;
                        if !target.contains(mask) {
                            *target = *target | mask;
                            changed = true;
                        }
                    }
                }
            }
            // Routes only reached from a cycle nothing else calls.
            match self.entries.iter_mut().find(|e| e.mask.0 == 0) {
                Some(e) => e.mask = RouteMask::REQUEST,
                None => return,
            }
        }
    }

    /// Reports each cycle of `route(NAME)` calls once, at the call that closes it.
    fn recursion(&self, edges: &[Vec<(usize, Span)>], errors: &mut Vec<Error>) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut mark = vec![Mark::New; edges.len()];
        for root in 0..edges.len() {
            if self.entries[root].kind != RouteKind::Sub || mark[root] != Mark::New {
                continue;
            }
            // The path from `root`, with the next edge to follow at each step.
            let mut path = vec![(root, 0)];
            mark[root] = Mark::OnPath;
            while let Some(&mut (node, ref mut next)) = path.last_mut() {
                let Some(&(to, span)) = edges[node].get(*next) else {
                    mark[node] = Mark::Done;
                    path.pop();
                    continue;
                };
                *next += 1;
                match mark[to] {
                    Mark::New => {
                        mark[to] = Mark::OnPath;
                        path.push((to, 0));
                    }
                    Mark::OnPath => {
                        let start = path.iter().position(|&(n, _)| n == to).unwrap_or(0);
                        let mut names: Vec<String> = path[start..]
                            .iter()
                            .map(|&(n, _)| self.entries[n].label())
                            .collect();
                        names.push(self.entries[to].label());
                        let msg = format!("recursive route call: {}", names.join(" -> "));
                        errors.push(Error::new(span, msg));
                    }
                    Mark::Done => {}
                }
            }
        }
    }
}
