//! Running a script whose conditions read borrowed variables and whose calls have constant
//! arguments allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use script::{
    ArgType, Avps, Env, Function, Host, Outcome, Registry, RouteMask, Script, Value, Variable,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

struct TestEnv;

impl Env for TestEnv {
    type Ctx<'a> = Ctx<'a>;
}

struct Ctx<'m> {
    method: &'m str,
    ruri: &'m str,
    relayed: u32,
    avps: Avps,
    flags: u64,
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
        uri.ends_with("@example.com")
    }
}

fn get_rm<'b>(c: &'b Ctx<'_>, _: &str) -> Value<'b> {
    Value::Str(Cow::Borrowed(c.method))
}

fn get_ru<'b>(c: &'b Ctx<'_>, _: &str) -> Value<'b> {
    Value::Str(Cow::Borrowed(c.ruri))
}

fn get_ruser<'b>(c: &'b Ctx<'_>, _: &str) -> Value<'b> {
    let rest = c.ruri.strip_prefix("sip:").unwrap_or(c.ruri);
    rest.split_once('@')
        .map_or(Value::Null, |(u, _)| Value::Str(Cow::Borrowed(u)))
}

fn get_cs<'b>(_: &'b Ctx<'_>, _: &str) -> Value<'b> {
    Value::Int(102)
}

fn is_method(c: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    match &args[0] {
        Value::Str(list) if list.split('|').any(|m| m == c.method) => 1,
        _ => -1,
    }
}

fn t_relay(c: &mut Ctx<'_>, _: &[Value<'_>]) -> i64 {
    c.relayed += 1;
    1
}

fn sl_send_reply(_: &mut Ctx<'_>, args: &[Value<'_>]) -> i64 {
    assert_eq!(
        args,
        [Value::Int(404), Value::Str(Cow::Borrowed("Not Found"))]
    );
    1
}

fn registry() -> Registry<TestEnv> {
    let mut r: Registry<TestEnv> = Registry::new();
    for (name, get) in [
        ("rm", get_rm as script::GetFn<TestEnv>),
        ("ru", get_ru),
        ("rU", get_ruser),
        ("cs", get_cs),
    ] {
        r.variable(Variable {
            name,
            param: false,
            get,
            set: None,
        });
    }
    let functions: [(&str, &[ArgType], script::CallFn<TestEnv>); 3] = [
        ("is_method", &[ArgType::Str], is_method),
        ("t_relay", &[], t_relay),
        (
            "sl_send_reply",
            &[ArgType::Int, ArgType::Str],
            sl_send_reply,
        ),
    ];
    for (name, args, call) in functions {
        r.function(Function {
            name,
            args,
            required: args.len(),
            routes: RouteMask::ANY,
            call,
        });
    }
    r
}

const SCRIPT: &str = r#"
request_route {
    if (!is_method("INVITE|REGISTER|OPTIONS") || $rm == "OPTIONS") {
        sl_send_reply(404, "Not Found");
        exit;
    }
    if ($rU =~ "^\+?49" && uri != myself && !isflag(2)) {
        setflag(1);
    }
    switch ($rm) {
        case "REGISTER":
            exit;
        case "INVITE":
            if (route(CHECK) == 2 && $rc == 2) { t_relay(); }
            break;
        default:
            drop;
    }
    if (isflag(1) && $avp(caller) == null && $cs >= 100 && $rU != "" && "+48" < $rU) {
        t_relay();
    }
}

route[CHECK] {
    if ($rU !~ "^0") { return 2; }
}
"#;

#[test]
fn conditions_and_constant_calls_allocate_nothing() {
    let script =
        Script::compile("alloc.cfg", SCRIPT, &registry()).unwrap_or_else(|e| panic!("{e}"));
    let run = |method: &'static str, ruri: &'static str| {
        let mut ctx = Ctx {
            method,
            ruri,
            relayed: 0,
            avps: Avps::default(),
            flags: 0,
        };
        let outcome = script.run_request(&mut ctx);
        (outcome, ctx.relayed)
    };
    // The first runs build the regular expressions' caches.
    assert_eq!(run("INVITE", "sip:+4912@gw.net"), (Outcome::Done, 2));
    assert_eq!(run("OPTIONS", "sip:+4912@gw.net"), (Outcome::Done, 0));
    let mut results = Vec::with_capacity(16);
    let count = allocations(|| {
        for _ in 0..4 {
            results.push(run("INVITE", "sip:+4912@gw.net"));
            results.push(run("INVITE", "sip:4912@example.com"));
            results.push(run("OPTIONS", "sip:4912@example.com"));
            results.push(run("BYE", "sip:4912@example.com"));
        }
    });
    assert_eq!(count, 0);
    // The counter does count: `$var`s live in a vector allocated per run.
    let source = "request_route { $var(x) = 1; }";
    let with_var = Script::compile("var.cfg", source, &registry()).unwrap();
    let mut ctx = Ctx {
        method: "INVITE",
        ruri: "sip:a@b",
        relayed: 0,
        avps: Avps::default(),
        flags: 0,
    };
    assert_eq!(
        allocations(|| {
            with_var.run_request(&mut ctx);
        }),
        1
    );
    assert_eq!(
        results[..4],
        [
            (Outcome::Done, 2),
            (Outcome::Done, 1),
            (Outcome::Done, 0),
            (Outcome::Done, 0)
        ]
    );
}
