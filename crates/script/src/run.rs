//! The compiled form at run time: the closure types, the state of one run and control flow.

use crate::registry::Env;
use crate::value::Value;
use crate::Outcome;

/// How deeply `route(NAME)` calls may nest at run time (recursion is refused at load; this
/// is a safety net).
const MAX_DEPTH: u32 = 100;

/// Why a statement did not complete normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `exit`: the whole run ends.
    Exit,
    /// `drop`: the whole run ends and the host discards.
    Drop,
    /// `return`: the route ends with this value.
    Return(i64),
    /// `break`: the enclosing switch ends.
    Break,
}

/// What statements give.
pub(crate) type Flow = Result<(), Stop>;

/// What expressions read: the state of one run of a top-level block.
#[derive(Debug)]
pub(crate) struct Frame {
    /// `$var(name)`, by slot.
    pub(crate) vars: Vec<Value<'static>>,
    /// `$rc`.
    pub(crate) rc: i64,
}

/// What statements work on besides the host's context.
pub(crate) struct Exec<'r, E: Env> {
    pub(crate) frame: Frame,
    routes: &'r [Body<E>],
    depth: u32,
}

/// An expression without side effects: reads the context and the frame, may borrow both.
pub(crate) type Pure<E> =
    Box<dyn for<'a, 'b> Fn(&'b <E as Env>::Ctx<'a>, &'b Frame) -> Value<'b> + Send + Sync>;
/// An expression that calls functions or routes.
pub(crate) type Eval<E> = Box<
    dyn for<'a, 'r> Fn(&mut <E as Env>::Ctx<'a>, &mut Exec<'r, E>) -> Result<Value<'static>, Stop>
        + Send
        + Sync,
>;
/// A condition without side effects.
pub(crate) type PureTest<E> =
    Box<dyn for<'a, 'b> Fn(&'b <E as Env>::Ctx<'a>, &'b Frame) -> bool + Send + Sync>;
/// A condition that calls functions or routes.
pub(crate) type EvalTest<E> = Box<
    dyn for<'a, 'r> Fn(&mut <E as Env>::Ctx<'a>, &mut Exec<'r, E>) -> Result<bool, Stop>
        + Send
        + Sync,
>;
/// A statement.
pub(crate) type Stmt<E> =
    Box<dyn for<'a, 'r> Fn(&mut <E as Env>::Ctx<'a>, &mut Exec<'r, E>) -> Flow + Send + Sync>;
/// A list of statements: a route block's body.
pub(crate) type Body<E> = Box<[Stmt<E>]>;

// Constructors: they give closures their higher-ranked signatures.

pub(crate) fn pure<E: Env, F>(f: F) -> Pure<E>
where
    F: for<'a, 'b> Fn(&'b E::Ctx<'a>, &'b Frame) -> Value<'b> + Send + Sync + 'static,
{
    Box::new(f)
}

pub(crate) fn eval<E: Env, F>(f: F) -> Eval<E>
where
    F: for<'a, 'r> Fn(&mut E::Ctx<'a>, &mut Exec<'r, E>) -> Result<Value<'static>, Stop>
        + Send
        + Sync
        + 'static,
{
    Box::new(f)
}

pub(crate) fn pure_test<E: Env, F>(f: F) -> PureTest<E>
where
    F: for<'a, 'b> Fn(&'b E::Ctx<'a>, &'b Frame) -> bool + Send + Sync + 'static,
{
    Box::new(f)
}

pub(crate) fn eval_test<E: Env, F>(f: F) -> EvalTest<E>
where
    F: for<'a, 'r> Fn(&mut E::Ctx<'a>, &mut Exec<'r, E>) -> Result<bool, Stop>
        + Send
        + Sync
        + 'static,
{
    Box::new(f)
}

pub(crate) fn stmt<E: Env, F>(f: F) -> Stmt<E>
where
    F: for<'a, 'r> Fn(&mut E::Ctx<'a>, &mut Exec<'r, E>) -> Flow + Send + Sync + 'static,
{
    Box::new(f)
}

/// Runs statements in order.
pub(crate) fn run_body<E: Env>(body: &[Stmt<E>], c: &mut E::Ctx<'_>, x: &mut Exec<'_, E>) -> Flow {
    body.iter().try_for_each(|s| s(c, x))
}

/// `route(NAME)`: runs the route's body and gives its return value (1 when it ends without
/// `return`), which also becomes `$rc`.
pub(crate) fn call_route<E: Env>(
    id: usize,
    c: &mut E::Ctx<'_>,
    x: &mut Exec<'_, E>,
) -> Result<Value<'static>, Stop> {
    let routes = x.routes;
    let Some(body) = routes.get(id).filter(|_| x.depth < MAX_DEPTH) else {
        tracing::error!(target: "script", "route calls nested too deeply: run ended");
        return Err(Stop::Exit);
    };
    x.depth += 1;
    let flow = run_body(body, c, x);
    x.depth -= 1;
    let code = match flow {
        Ok(()) | Err(Stop::Break) => 1,
        Err(Stop::Return(v)) => v,
        Err(stop) => return Err(stop),
    };
    x.frame.rc = code;
    Ok(Value::Int(code))
}

/// Runs the top-level block `id` with fresh `$var`s.
pub(crate) fn run_top<E: Env>(
    routes: &[Body<E>],
    id: usize,
    vars: usize,
    c: &mut E::Ctx<'_>,
) -> Outcome {
    let Some(body) = routes.get(id) else {
        return Outcome::Done;
    };
    let frame = Frame {
        vars: vec![Value::Null; vars],
        rc: 0,
    };
    let mut x = Exec {
        frame,
        routes,
        depth: 0,
    };
    match run_body(body, c, &mut x) {
        Err(Stop::Drop) => Outcome::Drop,
        _ => Outcome::Done,
    }
}
