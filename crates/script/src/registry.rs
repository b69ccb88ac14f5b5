//! What the host provides: its context type, its functions and variables.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::BitOr;

use crate::value::Value;

/// The kinds of route block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `request_route` (alias `route`): every new request.
    Request,
    /// `reply_route` (global, no name) or `reply_route[NAME]` / `onreply_route[NAME]` (armed
    /// with `t_on_reply`): replies.
    Reply,
    /// `failure_route[NAME]`: when every branch of a transaction failed.
    Failure,
    /// `branch_route[NAME]`: once per branch, before it is sent.
    Branch,
    /// `route[NAME]`: a sub-route called with `route(NAME)`.
    Sub,
}

/// A set of top-level route kinds where a function or variable may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMask(pub u8);

impl RouteMask {
    /// `request_route`.
    pub const REQUEST: RouteMask = RouteMask(1);
    /// `reply_route`, global or named.
    pub const REPLY: RouteMask = RouteMask(2);
    /// `failure_route`.
    pub const FAILURE: RouteMask = RouteMask(4);
    /// `branch_route`.
    pub const BRANCH: RouteMask = RouteMask(8);
    /// Everywhere.
    pub const ANY: RouteMask = RouteMask(15);

    /// True when every kind in `other` is in `self`.
    pub fn contains(self, other: RouteMask) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for RouteMask {
    type Output = RouteMask;

    fn bitor(self, other: RouteMask) -> RouteMask {
        RouteMask(self.0 | other.0)
    }
}

impl RouteKind {
    /// The block's keyword: `request_route`, `reply_route`, `failure_route`,
    /// `branch_route` or `route`.
    pub fn keyword(self) -> &'static str {
        match self {
            RouteKind::Request => "request_route",
            RouteKind::Reply => "reply_route",
            RouteKind::Failure => "failure_route",
            RouteKind::Branch => "branch_route",
            RouteKind::Sub => "route",
        }
    }

    /// The mask of a top-level kind (empty for `route[NAME]`).
    pub(crate) fn mask(self) -> RouteMask {
        match self {
            RouteKind::Request => RouteMask::REQUEST,
            RouteKind::Reply => RouteMask::REPLY,
            RouteKind::Failure => RouteMask::FAILURE,
            RouteKind::Branch => RouteMask::BRANCH,
            RouteKind::Sub => RouteMask(0),
        }
    }
}

/// The type of a function argument, checked at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// Any expression, passed as a string (`Value::Str`; ints are formatted; null is "").
    /// Double-quoted literals may contain `$variables`, replaced when the call runs.
    Str,
    /// An integer: an int literal, a string literal holding one (`"404"`, checked at load),
    /// or an expression (converted when the call runs: non-numbers become 0).
    Int,
    /// One of these literal words, checked at load (`save("location")`).
    OneOf(&'static [&'static str]),
    /// The name of a route block of this kind that must exist (identifier or string
    /// literal); passed as `Value::Int(RouteId)`.
    Route(RouteKind),
}

/// What a function does: the host's context and the evaluated arguments in, a return code
/// out (> 0 is true, <= 0 is false).
pub type CallFn<E> = for<'a, 'b> fn(&'b mut <E as Env>::Ctx<'a>, &[Value<'_>]) -> i64;
/// Reads a variable; the `&str` is the parameter in `$name(param)` ("" without one).
pub type GetFn<E> = for<'a, 'b> fn(&'b <E as Env>::Ctx<'a>, &str) -> Value<'b>;
/// Writes a variable; false when the value is not acceptable (the assignment is skipped and
/// logged).
pub type SetFn<E> = for<'a, 'b> fn(&'b mut <E as Env>::Ctx<'a>, &str, Value<'_>) -> bool;

/// A function a module provides.
pub struct Function<E: Env> {
    /// The name scripts call it by.
    pub name: &'static str,
    /// Its parameters, in order.
    pub args: &'static [ArgType],
    /// How many of them must be given (the rest are optional).
    pub required: usize,
    /// The route kinds it may be called from.
    pub routes: RouteMask,
    /// The implementation.
    pub call: CallFn<E>,
}

/// A variable a module provides (`$ru`, `$hdr(Name)`).
pub struct Variable<E: Env> {
    /// The name without `$`.
    pub name: &'static str,
    /// True when it takes a parameter: `$hdr(Name)`.
    pub param: bool,
    /// Reads it.
    pub get: GetFn<E>,
    /// Writes it; `None` for read-only variables.
    pub set: Option<SetFn<E>>,
}

/// Storage for a transaction's `$avp(name)` values, indexed by the slots the script assigned
/// at load. The host keeps it with the transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Avps(pub(crate) Vec<Value<'static>>);

impl Avps {
    /// No values.
    pub fn new() -> Avps {
        Avps::default()
    }

    /// The value in `slot` (`null` when unset).
    pub fn get(&self, slot: usize) -> &Value<'static> {
        static NULL: Value<'static> = Value::Null;
        self.0.get(slot).unwrap_or(&NULL)
    }

    /// Sets the value in `slot`; `null` deletes it.
    pub fn set(&mut self, slot: usize, value: Value<'static>) {
        if let Some(v) = self.0.get_mut(slot) {
            *v = value;
        } else if !value.is_null() {
            self.0.resize(slot, Value::Null);
            self.0.push(value);
        }
    }

    /// Deletes every value.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// What every host context provides to the language's built-ins.
pub trait Host {
    /// The transaction's AVPs.
    fn avps(&mut self) -> &mut Avps;
    /// The transaction's AVPs, to read.
    fn avps_ref(&self) -> &Avps;
    /// The transaction's flags (`setflag`, `isflag`, `resetflag`; 0 to 63).
    fn flags(&mut self) -> &mut u64;
    /// The transaction's flags, to read.
    fn flags_ref(&self) -> u64;
    /// `x == myself`: true when this URI (or host) designates this server.
    fn is_myself(&self, uri: &str) -> bool;
}

/// Describes the host's per-message context type (a type family, so that the context may
/// borrow the message and the host's state for one run).
pub trait Env: 'static {
    /// The context functions and variables work on.
    type Ctx<'a>: Host;
}

/// The functions and variables scripts may use: the language's built-ins plus what the
/// host's modules register.
pub struct Registry<E: Env> {
    functions: BTreeMap<&'static str, Func<E>>,
    variables: BTreeMap<&'static str, Var<E>>,
}

/// A function as the checker finds it.
pub(crate) enum Func<E: Env> {
    Builtin(Builtin),
    Host(Function<E>),
}

/// The language's own functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    SetFlag,
    ResetFlag,
    IsFlag,
    Log,
}

/// A variable as the checker finds it.
pub(crate) enum Var<E: Env> {
    /// `$var(name)`.
    Script,
    /// `$avp(name)`.
    Avp,
    /// `$rc`, `$retcode`.
    RetCode,
    Host(Variable<E>),
}

/// Words the language keeps for itself.
const RESERVED: [&str; 13] = [
    "route", "if", "else", "switch", "case", "default", "break", "return", "exit", "drop", "null",
    "uri", "myself",
];

impl<E: Env> Registry<E> {
    /// A registry with the language's built-ins: `setflag`, `resetflag`, `isflag`, `log`,
    /// `xlog`, and `$var`, `$avp`, `$rc`, `$retcode`.
    pub fn new() -> Registry<E> {
        let functions = [
            ("setflag", Builtin::SetFlag),
            ("resetflag", Builtin::ResetFlag),
            ("isflag", Builtin::IsFlag),
            ("log", Builtin::Log),
            ("xlog", Builtin::Log),
        ];
        let variables = [
            ("var", Var::Script),
            ("avp", Var::Avp),
            ("rc", Var::RetCode),
        ];
        let mut r = Registry {
            functions: functions
                .into_iter()
                .map(|(n, b)| (n, Func::Builtin(b)))
                .collect(),
            variables: variables.into_iter().collect(),
        };
        r.variables.insert("retcode", Var::RetCode);
        r
    }

    /// Registers a function.
    ///
    /// # Panics
    ///
    /// When the name is taken (by a built-in or an earlier registration), is `route` or
    /// a keyword, or when `required` exceeds the number of parameters: programming errors.
    pub fn function(&mut self, f: Function<E>) {
        assert!(!RESERVED.contains(&f.name), "`{}` is reserved", f.name);
        assert!(
            f.required <= f.args.len(),
            "`{}`: more required than parameters",
            f.name
        );
        let name = f.name;
        let old = self.functions.insert(name, Func::Host(f));
        assert!(old.is_none(), "function `{name}` registered twice");
    }

    /// Registers a variable.
    ///
    /// # Panics
    ///
    /// When the name is taken (by a built-in or an earlier registration).
    pub fn variable(&mut self, v: Variable<E>) {
        let name = v.name;
        let old = self.variables.insert(name, Var::Host(v));
        assert!(old.is_none(), "variable `${name}` registered twice");
    }

    pub(crate) fn lookup_function(&self, name: &str) -> Option<&Func<E>> {
        self.functions.get(name)
    }

    pub(crate) fn lookup_variable(&self, name: &str) -> Option<&Var<E>> {
        self.variables.get(name)
    }
}

impl<E: Env> Default for Registry<E> {
    fn default() -> Self {
        Registry::new()
    }
}

impl<E: Env> fmt::Debug for Registry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<E: Env> fmt::Debug for Function<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("required", &self.required)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl<E: Env> fmt::Debug for Variable<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Variable")
            .field("name", &self.name)
            .field("param", &self.param)
            .field("writable", &self.set.is_some())
            .finish_non_exhaustive()
    }
}
