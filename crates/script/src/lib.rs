//! The routing language of ferrosip: a script in the style of ser.cfg / kamailio.cfg (with
//! Kamailio's `#!define`, `#!ifdef` and `#!include_file` preprocessor) is parsed once,
//! checked against the functions and variables the modules register (errors name
//! file:line:column with a caret), and compiled into a tree of closures with variables,
//! routes and regexes resolved. Running it allocates nothing for conditions and branches.
//!
//! The crate knows nothing of SIP: a host (the proxy) describes its per-message context with
//! an [`Env`], registers its functions and variables in a [`Registry`], and runs the
//! compiled [`Script`] on that context.

mod ast;
mod builtins;
mod call;
mod check;
mod combine;
mod compile;
mod diag;
mod expr;
mod lexer;
mod ops;
mod parser;
mod preprocess;
mod registry;
mod run;
mod sources;
mod value;
mod vars;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::{fmt, io};

pub use diag::{Diagnostic, Diagnostics};
pub use registry::{
    ArgType, Avps, CallFn, Env, Function, GetFn, Host, Registry, RouteKind, RouteMask, SetFn,
    Variable,
};
pub use value::Value;

use check::Table;
use compile::Compiler;
use run::{run_top, Body};
use sources::Sources;

/// A compiled script, ready to run. Cheap to share (`Arc<Script<E>>`); immutable.
pub struct Script<E: Env> {
    /// The route blocks' bodies, indexed by [`RouteId`].
    bodies: Box<[Body<E>]>,
    /// Each block's kind and name ("" for `request_route` and the global `reply_route`).
    names: Box<[(RouteKind, Option<String>)]>,
    request: usize,
    reply: Option<usize>,
    /// How many `$var(name)` the script uses.
    vars: usize,
    /// `$avp(name)` slots by name.
    avps: Box<[String]>,
}

/// Identifies one named route block of a compiled script (`failure_route[X]`,
/// `branch_route[X]`, `reply_route[X]`). Functions that take an [`ArgType::Route`] receive it
/// as `Value::Int(id)`; [`RouteId::from_value`] turns it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub u32);

impl RouteId {
    /// The id a route argument was passed as.
    pub fn from_value(v: &Value<'_>) -> Option<RouteId> {
        match v {
            Value::Int(i) => u32::try_from(*i).ok().map(RouteId),
            _ => None,
        }
    }
}

/// How a run of a route ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The route ran to its end, or `return`ed / `exit`ed.
    Done,
    /// `drop` was executed: the host discards what the route was about (the request is not
    /// forwarded further, the branch is not sent, the reply is not relayed).
    Drop,
}

impl<E: Env> Script<E> {
    /// Parses and checks `source` (named `file` in diagnostics) against `registry`, and
    /// compiles it. Every error found is returned, each with file:line:column and a caret.
    /// The script cannot include files: see [`Script::compile_with`].
    pub fn compile(
        file: &str,
        source: &str,
        registry: &Registry<E>,
    ) -> Result<Script<E>, Diagnostics> {
        let load = |_: &Path| Err(io::Error::other("this script cannot include files"));
        Script::compile_with(file, source, registry, &load)
    }

    /// [`Script::compile`] for a script that may include files (`#!include_file`): `load`
    /// reads one, given its path (a relative path is joined to the including file's
    /// folder, and the result named in diagnostics).
    pub fn compile_with(
        file: &str,
        source: &str,
        registry: &Registry<E>,
        load: &dyn Fn(&Path) -> io::Result<String>,
    ) -> Result<Script<E>, Diagnostics> {
        let mut sources = Sources::new(file, source);
        let tokens = preprocess::expand(&mut sources, load);
        let report = |mut errors: Vec<diag::Error>| {
            errors.sort_by_key(|e| (e.span.start, e.span.end));
            errors.dedup();
            let list = errors
                .into_iter()
                .map(|e| Diagnostic::new(&sources, e))
                .collect();
            Diagnostics(list)
        };
        let blocks = tokens
            .and_then(parser::parse)
            .map_err(|e| report(vec![e]))?;
        let mut errors = Vec::new();
        let table = Table::build(&blocks, &sources, &mut errors);
        let mut compiler = Compiler::new(registry, &table);
        let bodies = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| compiler.block(i, &b.body))
            .collect();
        let Compiler {
            errors: mut found,
            vars,
            avps: avp_slots,
            ..
        } = compiler;
        errors.append(&mut found);
        let find = |kind| {
            table
                .entries
                .iter()
                .position(|e| e.kind == kind && e.name.is_none())
        };
        let (Some(request), true) = (find(RouteKind::Request), errors.is_empty()) else {
            return Err(report(errors));
        };
        let mut avps = vec![String::new(); avp_slots.len()];
        for (name, slot) in avp_slots {
            avps[slot] = name;
        }
        let reply = find(RouteKind::Reply);
        Ok(Script {
            bodies,
            names: table
                .entries
                .into_iter()
                .map(|e| (e.kind, e.name))
                .collect(),
            request,
            reply,
            vars: vars.len(),
            avps: avps.into(),
        })
    }

    /// Runs `request_route` on a request's context.
    pub fn run_request(&self, ctx: &mut E::Ctx<'_>) -> Outcome {
        run_top(&self.bodies, self.request, self.vars, ctx)
    }

    /// Runs the global `reply_route` (the one without a name), if the script has one.
    pub fn run_reply(&self, ctx: &mut E::Ctx<'_>) -> Outcome {
        match self.reply {
            Some(id) => run_top(&self.bodies, id, self.vars, ctx),
            None => Outcome::Done,
        }
    }

    /// True when the script has a global `reply_route` (hosts can skip building a context).
    pub fn has_reply_route(&self) -> bool {
        self.reply.is_some()
    }

    /// Runs a named failure, branch or reply route.
    pub fn run_route(&self, route: RouteId, ctx: &mut E::Ctx<'_>) -> Outcome {
        run_top(&self.bodies, route.0 as usize, self.vars, ctx)
    }

    /// The id of a named route block of this kind, if the script has one.
    pub fn route(&self, kind: RouteKind, name: &str) -> Option<RouteId> {
        let i = self
            .names
            .iter()
            .position(|(k, n)| *k == kind && n.as_deref() == Some(name))?;
        u32::try_from(i).ok().map(RouteId)
    }

    /// The kind and name of a route id ("" for `request_route` and the global
    /// `reply_route`).
    #[cfg(test)]
    pub(crate) fn route_name(&self, route: RouteId) -> Option<(RouteKind, &str)> {
        let (kind, name) = self.names.get(route.0 as usize)?;
        Some((*kind, name.as_deref().unwrap_or_default()))
    }

    /// The slot of `$avp(name)` in [`Avps`], if the script uses it.
    #[cfg(test)]
    pub(crate) fn avp_slot(&self, name: &str) -> Option<usize> {
        self.avps.iter().position(|n| n == name)
    }
}

impl<E: Env> fmt::Debug for Script<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("routes", &self.names)
            .field("vars", &self.vars)
            .field("avps", &self.avps)
            .finish_non_exhaustive()
    }
}
