//! A small host for the tests: a context with a few variables, and functions that record
//! their calls.

use std::borrow::Cow;

use crate::{
    ArgType, Avps, CallFn, Diagnostics, Env, Function, GetFn, Host, Outcome, Registry, RouteKind,
    RouteMask, Script, SetFn, Value, Variable,
};

pub(crate) struct TestEnv;

impl Env for TestEnv {
    type Ctx<'a> = Ctx<'a>;
}

/// A message (borrowed) and what the script did.
#[derive(Debug, Default)]
pub(crate) struct Ctx<'m> {
    pub(crate) rm: &'m str,
    pub(crate) ru: String,
    pub(crate) headers: &'m [(&'m str, &'m str)],
    pub(crate) calls: Vec<String>,
    pub(crate) avps: Avps,
    pub(crate) flags: u64,
}

impl<'m> Ctx<'m> {
    pub(crate) fn new(rm: &'m str, ru: &str) -> Ctx<'m> {
        Ctx {
            rm,
            ru: ru.to_owned(),
            ..Ctx::default()
        }
    }
}

impl Host for Ctx<'_> {
    fn avps(&mut self) -> &mut Avps {
        &mut self.avps
    }

    fn avps_ref(&self) -> &Avps {
        &self.avps
    }

    fn flags(&mut self) -> &mut u64 {
        &mut self.flags
    }

    fn flags_ref(&self) -> u64 {
        self.flags
    }

    fn is_myself(&self, uri: &str) -> bool {
        uri == "example.com" || uri.ends_with("@example.com") || uri == "sip:example.com"
    }
}

fn get_rm<'b>(c: &'b Ctx<'_>, _: &str) -> Value<'b> {
    Value::from(c.rm)
}

fn get_ru<'b>(c: &'b Ctx<'_>, _: &str) -> Value<'b> {
    Value::from(c.ru.as_str())
}

fn set_ru(c: &mut Ctx<'_>, _: &str, v: Value<'_>) -> bool {
    if v.is_null() {
        return false;
    }
    c.ru = v.as_str().into_owned();
    true
}

/// The user part of `$ru`: between "sip:" and "@".
fn get_ruser<'b>(c: &'b Ctx<'_>, _: &str) -> Value<'b> {
    let rest = c.ru.strip_prefix("sip:").unwrap_or(&c.ru);
    rest.split_once('@')
        .map_or(Value::Null, |(u, _)| Value::from(u))
}

fn get_hdr<'b>(c: &'b Ctx<'_>, name: &str) -> Value<'b> {
    let found = c.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
    found.map_or(Value::Null, |(_, v)| Value::Str(Cow::Borrowed(*v)))
}

fn get_cs<'b>(_: &'b Ctx<'_>, _: &str) -> Value<'b> {
    Value::Int(101)
}

fn record(c: &mut Ctx<'_>, name: &str, args: &[Value<'_>]) {
    let args: Vec<String> = args
        .iter()
        .map(|a| match a {
            Value::Null => "null".to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => format!("{s:?}"),
        })
        .collect();
    c.calls.push(format!("{name}({})", args.join(",")));
}

fn f(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    record(c, "f", args);
    args[0].as_int()
}

fn g(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    record(c, "g", args);
    1
}

fn t_relay(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    record(c, "t_relay", args);
    1
}

fn t_on_failure(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    record(c, "t_on_failure", args);
    1
}

fn sl_send_reply(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    record(c, "sl_send_reply", args);
    1
}

fn is_method(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    let list = args[0].as_str();
    if list.split('|').any(|m| m == c.rm) {
        1
    } else {
        -1
    }
}

fn save(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    record(c, "save", args);
    1
}

fn forward(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    record(c, "forward", args);
    1
}

/// A function's name, parameters, required count, route kinds and implementation.
type Spec = (
    &'static str,
    &'static [ArgType],
    usize,
    RouteMask,
    CallFn<TestEnv>,
);

pub(crate) fn registry() -> Registry<TestEnv> {
    let mut r: Registry<TestEnv> = Registry::new();
    let var = |name, get: GetFn<TestEnv>, set: Option<SetFn<TestEnv>>| -> Variable<TestEnv> {
        Variable {
            name,
            param: false,
            get,
            set,
        }
    };
    r.variable(var("rm", get_rm, None));
    r.variable(var("ru", get_ru, Some(set_ru)));
    r.variable(var("rU", get_ruser, None));
    r.variable(var("cs", get_cs, None));
    r.variable(Variable {
        name: "hdr",
        param: true,
        get: get_hdr,
        set: None,
    });
    let req_fail = RouteMask::REQUEST | RouteMask::FAILURE;
    let funcs: [Spec; 10] = [
        ("f", &[ArgType::Int], 1, RouteMask::ANY, f),
        ("g", &[ArgType::Str], 1, RouteMask::ANY, g),
        ("t_relay", &[], 0, req_fail, t_relay),
        (
            "t_on_failure",
            &[ArgType::Route(RouteKind::Failure)],
            1,
            req_fail,
            t_on_failure,
        ),
        (
            "sl_send_reply",
            &[ArgType::Int, ArgType::Str],
            2,
            RouteMask::REQUEST,
            sl_send_reply,
        ),
        ("is_method", &[ArgType::Str], 1, RouteMask::ANY, is_method),
        (
            "save",
            &[ArgType::OneOf(&["location"])],
            1,
            RouteMask::REQUEST,
            save,
        ),
        ("forward", &[ArgType::Str], 0, RouteMask::REQUEST, forward),
        (
            "h",
            &[ArgType::Int, ArgType::Str, ArgType::Str],
            1,
            RouteMask::ANY,
            g,
        ),
        ("reply_only", &[], 0, RouteMask::REPLY, g),
    ];
    for (name, args, required, routes, call) in funcs {
        r.function(Function {
            name,
            args,
            required,
            routes,
            call,
        });
    }
    r
}

pub(crate) fn compile(src: &str) -> Result<Script<TestEnv>, Diagnostics> {
    Script::compile("test.cfg", src, &registry())
}

/// The rendered errors of a script that must not compile.
pub(crate) fn errors(src: &str) -> String {
    match compile(src) {
        Ok(_) => panic!("compiled: {src}"),
        Err(d) => d.to_string(),
    }
}

/// Compiles `src` (which must compile) and runs its request_route on `ctx`.
pub(crate) fn run(src: &str, ctx: &mut Ctx<'_>) -> Outcome {
    let script = compile(src).unwrap_or_else(|e| panic!("{e}"));
    script.run_request(ctx)
}

/// The calls the request_route of `src` makes for a request of method `rm`.
pub(crate) fn calls(src: &str, rm: &str) -> Vec<String> {
    let mut ctx = Ctx::new(rm, "sip:49123@example.com");
    run(src, &mut ctx);
    ctx.calls
}
